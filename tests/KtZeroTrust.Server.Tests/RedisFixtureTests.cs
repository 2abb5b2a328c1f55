using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>The shared Redis fixture starts a real redis-server the later Redis work builds on.</summary>
public sealed class RedisFixtureTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    [Fact]
    public async Task RedisServer_Fixture_AnswersPing()
    {
        Assert.NotEqual(6379, redis.Port);
        Assert.Equal("+PONG", await redis.PingAsync(TestContext.Current.CancellationToken));
    }
}
