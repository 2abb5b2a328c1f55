using StackExchange.Redis;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Redis;
using KtZeroTrust.Registry.Redis;
using KtZeroTrust.Registry.Sqlite;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// Two gateway nodes sharing a real redis-server, a PKI and a registry file; the way ztctl reaches them (registry
/// write, then write-through to Redis) is <see cref="TransitionAsync"/>. Each node polls the registry only once an
/// hour, so whatever a node learns quickly it learned by push.
/// </summary>
public class RedisGatewayFixture : IAsyncLifetime
{
    private readonly TempDirectory _shared = new("ktzt-pair");

    public RedisServerFixture Redis { get; } = new();

    public ServerFixture NodeA { get; private set; } = null!;

    public ServerFixture NodeB { get; private set; } = null!;

    protected virtual IEnumerable<string> ExtraArguments => [];

    public async ValueTask InitializeAsync()
    {
        await Redis.InitializeAsync();
        var pki = _shared.Combine("pki");
        var registry = _shared.Combine("registry.db");
        string[] args =
        [
            $"--ZeroTrust:AllowList:Redis={Redis.Configuration},commandTimeout=1000,connectTimeout=1000",
            "--ZeroTrust:AllowList:RegistryPollInterval=01:00:00",
            .. ExtraArguments,
        ];
        NodeA = new ServerFixture(pki, registry, args);
        await NodeA.InitializeAsync();
        NodeB = new ServerFixture(pki, registry, args);
        await NodeB.InitializeAsync();
    }

    /// <summary>What <c>ztctl --redis device suspend|revoke|resume</c> does: commit to the registry, push through Redis.</summary>
    public async Task TransitionAsync(string serial, DeviceLifecycleState state, string reason)
    {
        await using var redis = new RedisConnection(Redis.Configuration);
        var sqlite = new SqliteDeviceRegistry(NodeA.RegistryPath, TimeProvider.System);
        using var synchronizer = new RegistryRedisSynchronizer(sqlite, new RedisAllowListStore(redis), TimeProvider.System);
        Exception? failure = null;
        var registry = new WriteThroughDeviceRegistry(sqlite, synchronizer, ex => failure = ex);
        await registry.TransitionAsync(serial, state, "test", reason);
        Assert.Null(failure);
    }

    public async ValueTask DisposeAsync()
    {
        await NodeB.DisposeAsync();
        await NodeA.DisposeAsync();
        await Redis.DisposeAsync();
        _shared.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// The pair with the library's own dead-connection detection out of reach (60 s keep-alive, 30 s command timeout), so
/// only the change feed's probe can notice a frozen Redis quickly.
/// </summary>
public sealed class SlowTimeoutsRedisGatewayFixture : RedisGatewayFixture
{
    protected override IEnumerable<string> ExtraArguments => [$"--ZeroTrust:AllowList:Redis={Redis.Configuration},keepAlive=60,commandTimeout=30000"];
}

/// <summary>The same pair with a short staleness window, for the Redis-outage tests.</summary>
public sealed class ShortStalenessRedisGatewayFixture : RedisGatewayFixture
{
    protected override IEnumerable<string> ExtraArguments => ["--ZeroTrust:AllowList:MaxStaleness=00:00:02"];
}
