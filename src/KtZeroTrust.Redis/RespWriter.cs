using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace KtZeroTrust.Redis;

/// <summary>Encodes a command as a RESP array of bulk strings into a pooled buffer.</summary>
internal static class RespWriter
{
    public static byte[] Encode(string command, ReadOnlySpan<RedisArg> args, out int length)
    {
        // Each argument's length is measured once (text arguments count their UTF-8 bytes).
        Span<int> lengths = args.Length <= 64 ? stackalloc int[args.Length] : new int[args.Length];
        var buffer = ArrayPool<byte>.Shared.Rent(Measure(command, args, lengths));
        length = Write(buffer, command, args, lengths);
        return buffer;
    }

    /// <summary>MULTI, the commands, EXEC: one contiguous payload, so nothing else on the connection can land inside.</summary>
    public static byte[] EncodeTransaction(IReadOnlyList<RedisCommand> commands, out int length)
    {
        var lengths = new int[commands.Sum(c => c.Args.Length)];
        var total = Measure("MULTI", [], []) + Measure("EXEC", [], []);
        var at = 0;
        foreach (var c in commands)
        {
            total += Measure(c.Name, c.Args, lengths.AsSpan(at, c.Args.Length));
            at += c.Args.Length;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(total);
        length = Write(buffer, "MULTI", [], []);
        at = 0;
        foreach (var c in commands)
        {
            length += Write(buffer.AsSpan(length), c.Name, c.Args, lengths.AsSpan(at, c.Args.Length));
            at += c.Args.Length;
        }

        length += Write(buffer.AsSpan(length), "EXEC", [], []);
        return buffer;
    }

    /// <summary>The encoded size; fills <paramref name="lengths"/> with each argument's payload length.</summary>
    private static int Measure(string command, ReadOnlySpan<RedisArg> args, Span<int> lengths)
    {
        var total = HeaderLength('*', args.Length + 1) + BulkLength(Encoding.ASCII.GetByteCount(command));
        for (var i = 0; i < args.Length; i++)
        {
            lengths[i] = args[i].PayloadLength;
            total += BulkLength(lengths[i]);
        }

        return total;
    }

    private static int Write(Span<byte> span, string command, ReadOnlySpan<RedisArg> args, ReadOnlySpan<int> lengths)
    {
        var at = WriteHeader(span, '*', args.Length + 1);
        at += WriteHeader(span[at..], '$', Encoding.ASCII.GetByteCount(command));
        at += Encoding.ASCII.GetBytes(command, span[at..]);
        at += WriteCrlf(span[at..]);
        for (var i = 0; i < args.Length; i++)
        {
            at += WriteHeader(span[at..], '$', lengths[i]);
            at += args[i].WritePayload(span[at..]);
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
