using StackExchange.Redis;

namespace KtZeroTrust.Redis.Tests;

public sealed class RedisConfigurationTests
{
    [Fact]
    public void Parse_ReadsTheLibrarysSyntax_AndOurKeys()
    {
        using var dir = new KtZeroTrust.Tests.Common.TempDirectory();
        var ca = Path.Combine(dir.Path, "ca.pem");
        File.WriteAllText(ca, KtZeroTrust.Tests.Common.TestCertificates.CreateCa("CN=Parse CA").Certificate.ExportCertificatePem());
        var o = RedisConfiguration.Parse($"redis.internal:6380, user=gw, password=p=w, ssl=true, sslHost=redis, sslCaFile={ca}, defaultDatabase=2, protocol=resp3, connectTimeout=1500, commandTimeout=250, name=gw-1");
        Assert.Equal("Unspecified/redis.internal:6380", Assert.Single(o.EndPoints).ToString());
        Assert.Equal(("gw", "p=w"), (o.User, o.Password));
        Assert.True(o.Ssl);
        Assert.Equal("redis", o.SslHost);
        Assert.Equal((2, RedisProtocol.Resp3), (o.DefaultDatabase, o.Protocol));
        Assert.Equal((1500, 250, 250), (o.ConnectTimeout, o.SyncTimeout, o.AsyncTimeout));
        Assert.Equal("gw-1", o.ClientName);
        Assert.DoesNotContain("p=w", RedisConfiguration.Describe(o), StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_Defaults_NeverAbortAndFailFast()
    {
        var o = RedisConfiguration.Parse("127.0.0.1:6379");
        Assert.False(o.AbortOnConnectFail); // a node starts while Redis is away
        Assert.Same(BacklogPolicy.FailFast, o.BacklogPolicy); // a request never waits in a backlog for Redis
        Assert.Equal("ktzerotrust", o.ClientName);
        Assert.True(RedisConfiguration.Parse("127.0.0.1:6379,abortConnect=true").AbortOnConnectFail); // ztctl-style callers may ask
    }

    [Fact]
    public void Parse_Sentinel_ListsTheSentinelsAndTheService()
    {
        var o = RedisConfiguration.Parse("10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379,serviceName=ktzt,password=p");
        Assert.Equal(3, o.EndPoints.Count);
        Assert.Equal("ktzt", o.ServiceName);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("password=x", "no host:port")]
    [InlineData("h:1,protocol=4", "protocol")]
    [InlineData("h:1,ssl=maybe", "ssl")]
    [InlineData("h:1,colour=blue", "'colour' is not supported")]
    [InlineData("h:1,commandTimeout=0", "commandTimeout must be")]
    [InlineData("h:1,sslCaFile=/nonexistent/ca.pem", "sslCaFile '/nonexistent/ca.pem' cannot be read")]
    public void Parse_RejectsBadConfiguration_WithAClearMessage(string text, string expected)
    {
        var ex = Assert.Throws<FormatException>(() => RedisConfiguration.Parse(text));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }
}
