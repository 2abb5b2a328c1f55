using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace KtZeroTrust.Redis;

/// <summary>
/// Parses one RESP2/RESP3 reply from a buffer. Returns false when the buffer holds only part of a reply (the caller
/// waits for more bytes and tries again from the same start); throws <see cref="RedisProtocolException"/> for
/// anything that is not RESP, so garbage from a peer ends the connection instead of stalling it.
/// </summary>
internal static class RespParser
{
    public const int MaxDepth = 32;
    public const long MaxBulkLength = 512L * 1024 * 1024; // Redis's own proto-max-bulk-len ceiling
    public const long MaxAggregateLength = 1L << 24;
    public const int MaxLineLength = 64 * 1024;

    private static ReadOnlySpan<byte> Crlf => "\r\n"u8;

    public static bool TryRead(ref SequenceReader<byte> reader, out RedisReply? reply) => TryRead(ref reader, 0, out reply);

    private static bool TryRead(ref SequenceReader<byte> reader, int depth, out RedisReply? reply)
    {
        reply = null;
        if (depth > MaxDepth)
        {
            throw new RedisProtocolException($"Reply nested deeper than {MaxDepth} levels.");
        }

        if (!reader.TryRead(out var type))
        {
            return false;
        }

        switch (type)
        {
            case (byte)'+':
                return TryLine(ref reader, out var simple) && Done(out reply, new RedisReply(RedisReplyKind.SimpleString, simple.ToArray()));
            case (byte)'-':
                return TryLine(ref reader, out var error) && Done(out reply, new RedisReply(RedisReplyKind.Error, error.ToArray()));
            case (byte)':':
                return TryInteger(ref reader, out var integer) && Done(out reply, new RedisReply(RedisReplyKind.Integer, integer: integer));
            case (byte)'(':
                return TryLine(ref reader, out var big) && Done(out reply, new RedisReply(RedisReplyKind.BigNumber, big.ToArray()));
            case (byte)'#':
                if (!TryLine(ref reader, out var flag))
                {
                    return false;
                }

                var text = Encoding.ASCII.GetString(flag);
                return text switch
                {
                    "t" => Done(out reply, new RedisReply(RedisReplyKind.Boolean, integer: 1)),
                    "f" => Done(out reply, new RedisReply(RedisReplyKind.Boolean, integer: 0)),
                    _ => throw new RedisProtocolException($"Invalid RESP3 boolean '{Printable(text)}'."),
                };
            case (byte)',':
                return TryLine(ref reader, out var dbl) && Done(out reply, new RedisReply(RedisReplyKind.Double, number: ParseDouble(dbl)));
            case (byte)'_':
                if (!TryLine(ref reader, out var nothing))
                {
                    return false;
                }

                return nothing.Length == 0 ? Done(out reply, RedisReply.Null) : throw new RedisProtocolException("Invalid RESP3 null.");
            case (byte)'$':
                return TryBulk(ref reader, RedisReplyKind.BulkString, out reply);
            case (byte)'!':
                return TryBulk(ref reader, RedisReplyKind.Error, out reply);
            case (byte)'=':
                return TryBulk(ref reader, RedisReplyKind.VerbatimString, out reply);
            case (byte)'*':
                return TryAggregate(ref reader, depth, RedisReplyKind.Array, 1, out reply);
            case (byte)'~':
                return TryAggregate(ref reader, depth, RedisReplyKind.Set, 1, out reply);
            case (byte)'>':
                return TryAggregate(ref reader, depth, RedisReplyKind.Push, 1, out reply);
            case (byte)'%':
                return TryAggregate(ref reader, depth, RedisReplyKind.Map, 2, out reply);
            case (byte)'|':
                // An attribute describes the reply that follows it; nothing here uses attributes, so skip to the reply.
                return TryAggregate(ref reader, depth, RedisReplyKind.Map, 2, out _) && TryRead(ref reader, depth, out reply);
            default:
                throw new RedisProtocolException($"Unexpected RESP type byte 0x{type:x2} ('{Printable(((char)type).ToString())}'); the peer is not speaking RESP.");
        }
    }

    private static bool TryBulk(ref SequenceReader<byte> reader, RedisReplyKind kind, out RedisReply? reply)
    {
        reply = null;
        if (!TryInteger(ref reader, out var length))
        {
            return false;
        }

        if (length == -1 && kind == RedisReplyKind.BulkString)
        {
            reply = RedisReply.Null;
            return true;
        }

        if (length is < 0 or > MaxBulkLength)
        {
            throw new RedisProtocolException($"Invalid bulk length {length}.");
        }

        if (reader.Remaining < length + 2)
        {
            return false;
        }

        var bytes = new byte[length];
        reader.TryCopyTo(bytes);
        reader.Advance(length);
        if (!reader.IsNext(Crlf, advancePast: true))
        {
            throw new RedisProtocolException("Bulk string not terminated by CRLF.");
        }

        reply = new RedisReply(kind, bytes);
        return true;
    }

    private static bool TryAggregate(ref SequenceReader<byte> reader, int depth, RedisReplyKind kind, int perEntry, out RedisReply? reply)
    {
        reply = null;
        if (!TryInteger(ref reader, out var count))
        {
            return false;
        }

        if (count == -1 && kind == RedisReplyKind.Array)
        {
            reply = RedisReply.Null;
            return true;
        }

        if (count < 0 || count * perEntry > MaxAggregateLength)
        {
            throw new RedisProtocolException($"Invalid aggregate length {count}.");
        }

        var items = new RedisReply[count * perEntry];
        for (var i = 0; i < items.Length; i++)
        {
            if (!TryRead(ref reader, depth + 1, out var item))
            {
                return false;
            }

            items[i] = item!;
        }

        reply = new RedisReply(kind, items: items);
        return true;
    }

    private static bool TryInteger(ref SequenceReader<byte> reader, out long value)
    {
        value = 0;
        if (!TryLine(ref reader, out var line))
        {
            return false;
        }

        if (line.Length is 0 or > 20 || !Utf8Parser.TryParse(line, out value, out var consumed) || consumed != line.Length)
        {
            throw new RedisProtocolException($"Invalid RESP integer '{Printable(Encoding.ASCII.GetString(line[..Math.Min(line.Length, 40)]))}'.");
        }

        return true;
    }

    private static double ParseDouble(ReadOnlySpan<byte> line)
    {
        var text = Encoding.ASCII.GetString(line);
        return text switch
        {
            "inf" => double.PositiveInfinity,
            "-inf" => double.NegativeInfinity,
            "nan" => double.NaN,
            _ when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
            _ => throw new RedisProtocolException($"Invalid RESP3 double '{Printable(text)}'."),
        };
    }

    /// <summary>Reads up to CRLF. Lines are short in RESP (headers, simple strings), so a long one means garbage.</summary>
    private static bool TryLine(ref SequenceReader<byte> reader, out ReadOnlySpan<byte> line)
    {
        line = default;
        if (!reader.TryReadTo(out ReadOnlySequence<byte> sequence, Crlf, advancePastDelimiter: true))
        {
            if (reader.Remaining > MaxLineLength)
            {
                throw new RedisProtocolException($"No CRLF within {MaxLineLength} bytes; the peer is not speaking RESP.");
            }

            return false;
        }

        if (sequence.Length > MaxLineLength)
        {
            throw new RedisProtocolException($"RESP line longer than {MaxLineLength} bytes.");
        }

        line = sequence.IsSingleSegment ? sequence.FirstSpan : sequence.ToArray();
        return true;
    }

    private static bool Done(out RedisReply? reply, RedisReply value)
    {
        reply = value;
        return true;
    }

    private static string Printable(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            builder.Append(char.IsControl(c) ? '?' : c);
        }

        return builder.ToString();
    }
}
