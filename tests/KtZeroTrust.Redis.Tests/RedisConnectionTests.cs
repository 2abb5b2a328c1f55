using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Registry.Redis;
using KtZeroTrust.Tests.Common;
using StackExchange.Redis;

namespace KtZeroTrust.Redis.Tests;

/// <summary>The shared multiplexer as the product configures it, against a real redis-server killed and restarted.</summary>
public sealed class RedisConnectionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task WhileRedisIsDown_CommandsFailAtOnce_NeverWaitForTheTimeout_AndWorkAgainAfterItReturns()
    {
        await using var server = new RedisServerFixture();
        await server.InitializeAsync();
        // A 10-minute command timeout: a command held in a backlog would outlive the test's 60 s bound by far.
        await using var redis = new RedisConnection(server.Configuration + ",commandTimeout=600000");
        var store = new RedisAllowListStore(redis);
        Assert.Null(await store.GetAsync(CertificateHash.Of([1]), Ct));

        await server.StopAsync();
        await Eventually.Until(() => Task.FromResult(redis.IsConnected), connected => !connected, "the multiplexer to see the kill");
        for (var i = 0; i < 20; i++)
        {
            // The allow-list lookup an L1 miss makes: refused at once, so the request is denied at once.
            await Assert.ThrowsAsync<RedisConnectionException>(() => store.GetAsync(CertificateHash.Of([1]), Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct));
        }

        await server.StartAsync();
        await Eventually.Until(async () =>
        {
            try
            {
                return await store.GetAsync(CertificateHash.Of([1]), Ct) is null;
            }
            catch (RedisConnectionException)
            {
                return false;
            }
        }, ok => ok, "the same multiplexer to reconnect by itself", TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task OneConfiguration_IsOneMultiplexer_ForTheWholeProcess()
    {
        await using var server = new RedisServerFixture();
        await server.InitializeAsync();
        await using var connections = new RedisConnections();
        var a = connections.Get(server.Configuration);
        Assert.Same(a, connections.Get(server.Configuration));
        Assert.Same(await a.ConnectAsync(), await connections.Get(server.Configuration).ConnectAsync());
        Assert.NotSame(a, connections.Get(server.Configuration + ",name=other"));
    }

    [Fact]
    public async Task StartingWhileRedisIsAway_DoesNotFail_AndConnectsWhenItComes()
    {
        await using var server = new RedisServerFixture();
        await server.InitializeAsync();
        await server.StopAsync();
        await using var redis = new RedisConnection(server.Configuration + ",connectTimeout=500");
        var db = await redis.DatabaseAsync(); // abortConnect=false: no exception, an unconnected multiplexer
        Assert.False(redis.IsConnected);
        await server.StartAsync();
        await Eventually.Until(() => Task.FromResult(redis.IsConnected), connected => connected, "the background reconnect", TimeSpan.FromSeconds(60));
        Assert.True(await db.StringSetAsync("zt:k", "v"));
    }
}
