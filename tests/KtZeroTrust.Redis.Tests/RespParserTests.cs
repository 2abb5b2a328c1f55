using System.Buffers;
using System.Text;
using KtZeroTrust.Redis;

namespace KtZeroTrust.Redis.Tests;

public sealed class RespParserTests
{
    [Theory]
    [InlineData("+OK\r\n", RedisReplyKind.SimpleString, "OK")]
    [InlineData("-ERR bad\r\n", RedisReplyKind.Error, "ERR bad")]
    [InlineData(":-42\r\n", RedisReplyKind.Integer, "-42")]
    [InlineData("$5\r\nhello\r\n", RedisReplyKind.BulkString, "hello")]
    [InlineData("$0\r\n\r\n", RedisReplyKind.BulkString, "")]
    [InlineData("$-1\r\n", RedisReplyKind.Null, null)]
    [InlineData("*-1\r\n", RedisReplyKind.Null, null)]
    [InlineData("_\r\n", RedisReplyKind.Null, null)]
    [InlineData("#t\r\n", RedisReplyKind.Boolean, "true")]
    [InlineData(",3.5\r\n", RedisReplyKind.Double, "3.5")]
    [InlineData(",inf\r\n", RedisReplyKind.Double, "Infinity")]
    [InlineData("(3492890328409238509324850943850943825024385\r\n", RedisReplyKind.BigNumber, "3492890328409238509324850943850943825024385")]
    [InlineData("=15\r\ntxt:Some string\r\n", RedisReplyKind.VerbatimString, "Some string")]
    [InlineData("!9\r\nERR thing\r\n", RedisReplyKind.Error, "ERR thing")]
    public void Scalars_ParseToTheirKindAndValue(string wire, RedisReplyKind kind, string? text)
    {
        var reply = ParseWhole(wire);
        Assert.Equal(kind, reply.Kind);
        Assert.Equal(text, reply.AsString());
    }

    [Fact]
    public void Aggregates_ParseNestedAndMapsFlatten()
    {
        var array = ParseWhole("*3\r\n:1\r\n*2\r\n+a\r\n$1\r\nb\r\n_\r\n");
        Assert.Equal(3, array.Items.Count);
        Assert.Equal("b", array.Items[1].Items[1].AsString());
        Assert.True(array.Items[2].IsNull);

        var map = ParseWhole("%2\r\n+first\r\n:1\r\n+second\r\n$2\r\nxy\r\n");
        Assert.Equal(RedisReplyKind.Map, map.Kind);
        Assert.Equal(["first", "1", "second", "xy"], map.Items.Select(i => i.AsString()));

        var push = ParseWhole(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nabc\r\n");
        Assert.Equal(RedisReplyKind.Push, push.Kind);

        // An attribute is skipped; the reply it decorates is what comes out.
        var attributed = ParseWhole("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n");
        Assert.Equal(RedisReplyKind.Array, attributed.Kind);
        Assert.Equal(2, attributed.Items[0].AsInt64());
    }

    [Fact]
    public void EveryProperPrefix_IsIncomplete_AndTheWholeParses()
    {
        var wire = Encoding.UTF8.GetBytes("*4\r\n$3\r\nabc\r\n:7\r\n%1\r\n+k\r\n~2\r\n#f\r\n,1.5\r\n$-1\r\n");
        for (var cut = 0; cut < wire.Length; cut++)
        {
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(wire, 0, cut));
            Assert.False(RespParser.TryRead(ref reader, out _), $"prefix of {cut} bytes parsed as complete");
        }

        var whole = new SequenceReader<byte>(new ReadOnlySequence<byte>(wire));
        Assert.True(RespParser.TryRead(ref whole, out var reply));
        Assert.Equal(0, whole.Remaining);
        Assert.Equal(4, reply!.Items.Count);
    }

    [Fact]
    public void ReplySplitAcrossSegments_Parses()
    {
        var first = new Segment(Encoding.ASCII.GetBytes("$10\r\n01234"));
        var last = first.Append(Encoding.ASCII.GetBytes("56789\r\n"));
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length));
        Assert.True(RespParser.TryRead(ref reader, out var reply));
        Assert.Equal("0123456789", reply!.AsString());
    }

    [Theory]
    [InlineData("?garbage\r\n", "Unexpected RESP type byte")]
    [InlineData("HTTP/1.1 400 Bad Request\r\n", "Unexpected RESP type byte")]
    [InlineData(":12x\r\n", "Invalid RESP integer")]
    [InlineData("$abc\r\n", "Invalid RESP integer")]
    [InlineData("$-5\r\n", "Invalid bulk length")]
    [InlineData("$3\r\nabcXY", "not terminated by CRLF")]
    [InlineData("*-3\r\n", "Invalid aggregate length")]
    [InlineData("#x\r\n", "Invalid RESP3 boolean")]
    [InlineData(",notanumber\r\n", "Invalid RESP3 double")]
    public void Garbage_IsAProtocolError(string wire, string expected)
    {
        var ex = Assert.Throws<RedisProtocolException>(() => ParseWhole(wire));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EndlessLineWithoutCrlf_IsAProtocolErrorNotAWait()
    {
        var wire = "+" + new string('a', RespParser.MaxLineLength + 10);
        Assert.Throws<RedisProtocolException>(() => ParseWhole(wire));
    }

    [Fact]
    public void NestingBeyondTheLimit_IsAProtocolError()
    {
        var wire = string.Concat(Enumerable.Repeat("*1\r\n", RespParser.MaxDepth + 2)) + ":1\r\n";
        Assert.Throws<RedisProtocolException>(() => ParseWhole(wire));
    }

    [Fact]
    public void Encoder_WritesRespArrayOfBulkStrings_BinarySafe()
    {
        var buffer = RespWriter.Encode("SET", ["k", new byte[] { 0, 13, 10, 255 }, 42], out var length);
        byte[] expected = [.. "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n"u8, 0, 13, 10, 255, .. "\r\n$2\r\n42\r\n"u8];
        expected[1] = (byte)'4';
        Assert.Equal(expected, buffer.AsSpan(0, length).ToArray());
        ArrayPool<byte>.Shared.Return(buffer);
    }

    private static RedisReply ParseWhole(string wire)
    {
        var bytes = Encoding.UTF8.GetBytes(wire);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        Assert.True(RespParser.TryRead(ref reader, out var reply), "incomplete");
        Assert.Equal(0, reader.Remaining);
        return reply!;
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
