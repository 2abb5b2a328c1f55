using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace KtZeroTrust.Redis;

/// <summary>Encodes a command as a RESP array of bulk strings into a pooled buffer.</summary>
internal static class RespWriter
{
    public static byte[] Encode(string command, ReadOnlySpan<RedisArg> args, out int length)
    {
        // The hot path (one command): each argument's length is measured once.
        var commandLength = Encoding.ASCII.GetByteCount(command);
        var total = HeaderLength('*', args.Length + 1) + BulkLength(commandLength);
        Span<int> payloadLengths = args.Length <= 64 ? stackalloc int[args.Length] : new int[args.Length];
        for (var i = 0; i < args.Length; i++)
        {
            payloadLengths[i] = args[i].PayloadLength;
            total += BulkLength(payloadLengths[i]);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(total);
        var span = buffer.AsSpan();
        var at = WriteHeader(span, '*', args.Length + 1);
        at += WriteHeader(span[at..], '$', commandLength);
        at += Encoding.ASCII.GetBytes(command, span[at..]);
        at += WriteCrlf(span[at..]);
        for (var i = 0; i < args.Length; i++)
        {
            at += WriteHeader(span[at..], '$', payloadLengths[i]);
            at += args[i].WritePayload(span[at..]);
            at += WriteCrlf(span[at..]);
        }

        length = at;
        return buffer;
    }

    /// <summary>MULTI, the commands, EXEC: one contiguous payload, so nothing else on the connection can land inside.</summary>
    public static byte[] EncodeTransaction(IReadOnlyList<RedisCommand> commands, out int length)
    {
        var total = EncodedLength("MULTI", []) + EncodedLength("EXEC", []);
        foreach (var c in commands)
        {
            total += EncodedLength(c.Name, c.Args);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(total);
        var at = Write(buffer, "MULTI", []);
        foreach (var c in commands)
        {
            at += Write(buffer.AsSpan(at), c.Name, c.Args);
        }

        length = at + Write(buffer.AsSpan(at), "EXEC", []);
        return buffer;
    }

    private static int EncodedLength(string command, ReadOnlySpan<RedisArg> args)
    {
        var total = HeaderLength('*', args.Length + 1) + BulkLength(Encoding.ASCII.GetByteCount(command));
        foreach (var arg in args)
        {
            total += BulkLength(arg.PayloadLength);
        }

        return total;
    }

    private static int Write(Span<byte> span, string command, ReadOnlySpan<RedisArg> args)
    {
        var at = WriteHeader(span, '*', args.Length + 1);
        at += WriteHeader(span[at..], '$', Encoding.ASCII.GetByteCount(command));
        at += Encoding.ASCII.GetBytes(command, span[at..]);
        at += WriteCrlf(span[at..]);
        foreach (var arg in args)
        {
            at += WriteHeader(span[at..], '$', arg.PayloadLength);
            at += arg.WritePayload(span[at..]);
            at += WriteCrlf(span[at..]);
        }

        return at;
    }

    private static int BulkLength(int payload) => HeaderLength('$', payload) + payload + 2;

    private static int HeaderLength(char prefix, int count) => 1 + RedisArg.DigitCount(count) + 2;

    private static int WriteHeader(Span<byte> destination, char prefix, int count)
    {
        destination[0] = (byte)prefix;
        Utf8Formatter.TryFormat(count, destination[1..], out var written);
        return 1 + written + WriteCrlf(destination[(1 + written)..]);
    }

    private static int WriteCrlf(Span<byte> destination)
    {
        destination[0] = (byte)'\r';
        destination[1] = (byte)'\n';
        return 2;
    }
}
