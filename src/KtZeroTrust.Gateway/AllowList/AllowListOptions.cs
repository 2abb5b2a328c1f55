namespace KtZeroTrust.Gateway.AllowList;

/// <summary>The allow-list cache. Bound from <c>ZeroTrust:AllowList</c>.</summary>
public sealed class AllowListOptions
{
    public const string SectionName = "ZeroTrust:AllowList";

    /// <summary>
    /// Redis configuration string (<c>host:port,password=...,ssl=true</c>). Empty (the embedded default): the in-process
    /// cache holds the whole allow list, fed from the registry directly.
    /// </summary>
    public string? Redis { get; set; }

    /// <summary>Prefix of the allow-list keys and channel in Redis. Default <c>zt:al:</c>.</summary>
    public string KeyPrefix { get; set; } = "zt:al:";

    /// <summary>How often the registry's change counter is read (the embedded feed, and the Redis safety net). Default 1 s.</summary>
    public TimeSpan RegistryPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// With Redis: push the registry's changes to Redis from this node (write-through for writers that could not reach
    /// Redis). Needs the registry; default true.
    /// </summary>
    public bool SyncRegistryToRedis { get; set; } = true;

    /// <summary>
    /// With Redis: how long entries already cached stay usable after the invalidation channel is lost; then every device
    /// is denied until the node has resynchronised. Default 30 s.
    /// </summary>
    public TimeSpan MaxStaleness { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// With Redis: the change feed is probed with a PING on its subscription every second; one not answered within this
    /// time means the subscription is dead (a silent network failure gives no other sign until TCP gives up), which
    /// starts the <see cref="MaxStaleness"/> clock. Default 3 s.
    /// </summary>
    public TimeSpan FeedProbeTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How long an unknown certificate is remembered as unknown, so repeats do not reach Redis. Default 5 s.</summary>
    public TimeSpan NegativeCacheDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Most unknown certificates remembered at once (a flood of them cannot grow memory). Default 100,000.</summary>
    public int NegativeCacheSize { get; set; } = 100_000;

    /// <summary>Most cache misses looked up in Redis at once; beyond that a miss is denied, not queued. Default 256.</summary>
    public int MaxConcurrentLookups { get; set; } = 256;
}
