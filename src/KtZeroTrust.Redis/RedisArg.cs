using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace KtZeroTrust.Redis;

/// <summary>One command argument, sent as a RESP bulk string: binary-safe, no escaping.</summary>
public readonly struct RedisArg
{
    private readonly string? _text;
    private readonly ReadOnlyMemory<byte> _bytes;
    private readonly long _integer;
    private readonly ArgKind _kind;

    private RedisArg(string? text, ReadOnlyMemory<byte> bytes, long integer, ArgKind kind)
    {
        _text = text;
        _bytes = bytes;
        _integer = integer;
        _kind = kind;
    }

    private enum ArgKind : byte
    {
        Bytes,
        Text,
        Integer,
    }

    public static RedisArg FromText(string value) => new(value ?? throw new ArgumentNullException(nameof(value)), default, 0, ArgKind.Text);

    public static RedisArg FromBytes(ReadOnlyMemory<byte> value) => new(null, value, 0, ArgKind.Bytes);

    public static RedisArg FromInt64(long value) => new(null, default, value, ArgKind.Integer);

    public static RedisArg FromDouble(double value) => FromText(value.ToString("R", CultureInfo.InvariantCulture));

    public static implicit operator RedisArg(string value) => FromText(value);

    public static implicit operator RedisArg(byte[] value) => FromBytes(value ?? throw new ArgumentNullException(nameof(value)));

    public static implicit operator RedisArg(ReadOnlyMemory<byte> value) => FromBytes(value);

    public static implicit operator RedisArg(long value) => FromInt64(value);

    public static implicit operator RedisArg(int value) => FromInt64(value);

    /// <summary>Bytes of the argument's payload (without the RESP framing).</summary>
    internal int PayloadLength => _kind switch
    {
        ArgKind.Text => Encoding.UTF8.GetByteCount(_text!),
        ArgKind.Integer => DigitCount(_integer),
        _ => _bytes.Length,
    };

    internal int WritePayload(Span<byte> destination)
    {
        switch (_kind)
        {
            case ArgKind.Text:
                return Encoding.UTF8.GetBytes(_text!, destination);
            case ArgKind.Integer:
                Utf8Formatter.TryFormat(_integer, destination, out var written);
                return written;
            default:
                _bytes.Span.CopyTo(destination);
                return _bytes.Length;
        }
    }

    public override string ToString() => _kind switch
    {
        ArgKind.Text => _text!,
        ArgKind.Integer => _integer.ToString(CultureInfo.InvariantCulture),
        _ => $"<{_bytes.Length} bytes>",
    };

    internal static int DigitCount(long value)
    {
        Span<byte> scratch = stackalloc byte[20];
        Utf8Formatter.TryFormat(value, scratch, out var written);
        return written;
    }
}
