using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Redis;
using KtZeroTrust.Registry.Redis;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Gateway.AllowList.Redis;

/// <summary>
/// This node's Redis connections: the shared multiplexer for lookups and writes, and the subscriber for the change
/// feed. Opened by the sync service at start (never failing the start: a node whose Redis is down denies until it is
/// back); until then <see cref="FeedConnected"/> is false and lookups are refused.
/// </summary>
public sealed class GatewayRedis(IOptions<AllowListOptions> options, RedisConnections connections, TimeProvider timeProvider, IAllowListSource? registry = null) : IAsyncDisposable
{
    private RedisClient? _client;
    private RedisSubscriber? _subscriber;

    public RedisOptions ClientOptions { get; } = CreateOptions(options.Value);

    public RedisAllowListStore? Store { get; private set; }

    public RedisClient? Client => _client;

    /// <summary>Registry-to-Redis synchronisation, on nodes that have the registry (and have it enabled).</summary>
    public RegistryRedisSynchronizer? Synchronizer { get; private set; }

    public RedisSubscriber? Subscriber => _subscriber;

    /// <summary>True while the change feed is subscribed: only then can the cache learn of revocations.</summary>
    public bool FeedConnected => _subscriber is { IsConnected: true };

    public async Task OpenAsync(CancellationToken cancellationToken)
    {
        _client = await connections.GetAsync(options.Value.Redis!); // shared with the other features of this process
        _subscriber = await RedisSubscriber.ConnectAsync(ClientOptions, cancellationToken);
        Store = new RedisAllowListStore(_client, options.Value.KeyPrefix);
        if (registry is not null && options.Value.SyncRegistryToRedis)
        {
            Synchronizer = new RegistryRedisSynchronizer(registry, Store, timeProvider);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Synchronizer?.Dispose();
        if (_subscriber is not null)
        {
            await _subscriber.DisposeAsync();
        }

    }

    private static RedisOptions CreateOptions(AllowListOptions options)
    {
        var redis = RedisOptions.Parse(options.Redis ?? throw new InvalidOperationException("ZeroTrust:AllowList:Redis is not set."));
        // A gateway must start, and keep serving what it safely can, while Redis is down: never abort on connect.
        redis.AbortOnConnectFail = false;
        redis.ClientName ??= "ktzerotrust-gateway";
        return redis;
    }
}
