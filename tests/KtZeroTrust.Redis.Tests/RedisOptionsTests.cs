using KtZeroTrust.Redis;

namespace KtZeroTrust.Redis.Tests;

public sealed class RedisOptionsTests
{
    [Fact]
    public void Parse_ReadsEveryOption()
    {
        var o = RedisOptions.Parse("redis.internal:6380, user=gw, password=p=w, ssl=true, sslHost=redis, sslCaFile=/etc/ca.pem, defaultDatabase=2, protocol=resp3, connectTimeout=1500, commandTimeout=250, abortConnect=false, name=gw-1");
        Assert.Equal(("redis.internal", 6380), (o.Host, o.Port));
        Assert.Equal(("gw", "p=w"), (o.User, o.Password));
        Assert.True(o.Ssl);
        Assert.Equal(("redis", "/etc/ca.pem"), (o.SslHost, o.SslCaFile));
        Assert.Equal((2, 3), (o.Database, o.Protocol));
        Assert.Equal(TimeSpan.FromMilliseconds(1500), o.ConnectTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(250), o.CommandTimeout);
        Assert.False(o.AbortOnConnectFail);
        Assert.Equal("gw-1", o.ClientName);
        Assert.DoesNotContain("p=w", o.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1", 6379)]
    [InlineData("[::1]:7000", "::1", 7000)]
    [InlineData("localhost:7001", "localhost", 7001)]
    public void Parse_Endpoints(string text, string host, int port)
    {
        var o = RedisOptions.Parse(text);
        Assert.Equal((host, port), (o.Host, o.Port));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("password=x", "no host:port")]
    [InlineData("h:1,h:2", "only one endpoint")]
    [InlineData("h:99999", "port must be")]
    [InlineData("h:1,protocol=4", "protocol must be 2 or 3")]
    [InlineData("h:1,ssl=maybe", "ssl must be true or false")]
    [InlineData("h:1,colour=blue", "unknown option 'colour'")]
    public void Parse_RejectsBadConfiguration_WithAClearMessage(string text, string expected)
    {
        var ex = Assert.Throws<FormatException>(() => RedisOptions.Parse(text));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }
}
