using KtZeroTrust.Redis;
using KtZeroTrust.Registry.Redis;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Gateway.AllowList.Redis;

/// <summary>
/// This node's allow list in Redis: the process's shared multiplexer for the configured Redis, the store on it, the
/// registry synchroniser (registered by the composition root on nodes with the registry, whatever their roles), and
/// whether the change feed is live. Until the sync service has
/// confirmed the subscription, <see cref="FeedConnected"/> is false and lookups are refused.
/// </summary>
public sealed class GatewayRedis
{
    private int _feedConnected;

    public GatewayRedis(IOptions<AllowListOptions> options, RedisConnections connections, RegistryRedisSynchronizer? synchronizer = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(connections);
        var value = options.Value;
        Connection = connections.Get(value.Redis ?? throw new InvalidOperationException("ZeroTrust:AllowList:Redis is not set."));
        Store = new RedisAllowListStore(Connection, value.KeyPrefix);
        Synchronizer = value.SyncRegistryToRedis ? synchronizer : null;
    }

    /// <summary>Shared with the other features of this process that use the same configuration.</summary>
    public RedisConnection Connection { get; }

    public RedisAllowListStore Store { get; }

    /// <summary>Registry-to-Redis synchronisation, on nodes that have the registry (and have it enabled).</summary>
    public RegistryRedisSynchronizer? Synchronizer { get; }

    /// <summary>True while the change feed is subscribed and answering: only then can the cache learn of revocations.</summary>
    public bool FeedConnected => Volatile.Read(ref _feedConnected) == 1;

    /// <summary>Sets the feed's state; returns the previous one.</summary>
    internal bool SetFeedConnected(bool connected) => Interlocked.Exchange(ref _feedConnected, connected ? 1 : 0) == 1;
}
