using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace KtZeroTrust.Redis;

/// <summary>The RESP2 and RESP3 reply types (named as the protocol names them).</summary>
#pragma warning disable CA1720
public enum RedisReplyKind
{
    SimpleString,
    Error,
    Integer,
    BulkString,
    Array,
    Null,
    Double,
    Boolean,
    BigNumber,
    VerbatimString,
    Map,
    Set,
    Push,
}
#pragma warning restore CA1720

/// <summary>
/// One reply. RESP3 maps are held flattened (key, value, key, value) so callers read a RESP2 and a RESP3 reply
/// to the same command the same way.
/// </summary>
public sealed class RedisReply
{
    private static readonly RedisReply[] NoItems = [];
    private readonly byte[]? _bytes;
    private readonly long _integer;
    private readonly double _double;
    private readonly RedisReply[]? _items;

    internal RedisReply(RedisReplyKind kind, byte[]? bytes = null, long integer = 0, double number = 0, RedisReply[]? items = null)
    {
        Kind = kind;
        _bytes = bytes;
        _integer = integer;
        _double = number;
        _items = items;
    }

    internal static RedisReply Null { get; } = new(RedisReplyKind.Null);

    public RedisReplyKind Kind { get; }

    public bool IsNull => Kind == RedisReplyKind.Null;

    public bool IsError => Kind == RedisReplyKind.Error;

    /// <summary>The elements of an array, set, push or (flattened) map reply; empty for anything else.</summary>
    public IReadOnlyList<RedisReply> Items => _items ?? NoItems;

    /// <summary>The raw bytes of a string-like reply (verbatim strings without their format prefix); null otherwise.</summary>
    public byte[]? AsBytes() => Kind switch
    {
        RedisReplyKind.VerbatimString when _bytes is { Length: >= 4 } => _bytes[4..],
        RedisReplyKind.SimpleString or RedisReplyKind.BulkString or RedisReplyKind.Error or RedisReplyKind.BigNumber or RedisReplyKind.VerbatimString => _bytes,
        _ => null,
    };

    public string? AsString() => Kind switch
    {
        RedisReplyKind.Null => null,
        RedisReplyKind.Integer => _integer.ToString(CultureInfo.InvariantCulture),
        RedisReplyKind.Double => _double.ToString("R", CultureInfo.InvariantCulture),
        RedisReplyKind.Boolean => _integer != 0 ? "true" : "false",
        _ when AsBytes() is { } bytes => Encoding.UTF8.GetString(bytes),
        _ => null,
    };

    /// <summary>An integer reply, or a string reply holding an integer.</summary>
    public long AsInt64()
    {
        if (Kind is RedisReplyKind.Integer or RedisReplyKind.Boolean)
        {
            return _integer;
        }

        if (AsBytes() is { } bytes && Utf8Parser.TryParse(bytes, out long value, out var consumed) && consumed == bytes.Length)
        {
            return value;
        }

        throw new RedisProtocolException($"Expected an integer reply, got {Describe()}.");
    }

    public double AsDouble()
    {
        if (Kind == RedisReplyKind.Double)
        {
            return _double;
        }

        return Kind == RedisReplyKind.Integer
            ? _integer
            : double.TryParse(AsString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value : throw new RedisProtocolException($"Expected a number reply, got {Describe()}.");
    }

    /// <summary>A short description for error messages: kind and a bounded preview.</summary>
    public string Describe() => Kind switch
    {
        RedisReplyKind.Array or RedisReplyKind.Set or RedisReplyKind.Map or RedisReplyKind.Push => $"{Kind} of {Items.Count}",
        RedisReplyKind.Null => "null",
        _ => $"{Kind} '{Preview()}'",
    };

    public override string ToString() => Describe();

    private string Preview()
    {
        var text = AsString() ?? "";
        return text.Length <= 80 ? text : text[..80] + "...";
    }
}
