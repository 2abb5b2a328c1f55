using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Redis;
using StackExchange.Redis;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Gateway.AllowList.Redis;

/// <summary>
/// Keeps this node's L1 in step with Redis. Invalidation is a pub/sub channel rather than RESP3 client tracking: a
/// message carries the changed entries themselves, so every node applies a revocation without a read-back, including
/// for certificates it never cached (which also clears them from its negative cache); tracking would only say "key
/// changed" for keys this node had read. A lost subscription means missed messages, so:
/// lost (a connection failure, or the subscription's PING unanswered for <see cref="AllowListOptions.FeedProbeTimeout"/>)
/// -> cached entries stay usable for <see cref="AllowListOptions.MaxStaleness"/>, then everything is denied;
/// restored (a PING answered after the re-subscription) -> every cached entry is re-read from Redis before the cache is
/// trusted again.
/// On nodes with the registry it also runs the registry-to-Redis synchronisation (at start and every poll interval),
/// the safety net for registry writers that could not reach Redis.
/// </summary>
internal sealed partial class RedisAllowListSyncService(
    GatewayRedis redis,
    AllowListCache cache,
    AllowListUpdates updates,
    IDecisionSink decisions,
    DecisionFactory decisionFactory,
    IOptions<AllowListOptions> options,
    TimeProvider timeProvider,
    ILogger<RedisAllowListSyncService> logger) : BackgroundService
{
    private readonly SemaphoreSlim _resync = new(1, 1);
    private volatile bool _needsResync;
    private volatile bool _lostOnce;
    private int _staleReported;
    private ISubscriber? _subscriber;
    private bool _eventsAttached;
    private long _subscriptionSockets = -1;

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        LogConnecting(logger, redis.Connection.Description);
        try
        {
            await EnsureSubscribedAsync();
            await ProbeFeedAsync(); // the subscription confirmed before the first request is served
            await SyncRegistryAsync(cancellationToken);
        }
        catch (Exception ex) when (RedisFailure.Is(ex) || ex is TimeoutException)
        {
            // Start anyway: the cache is empty, so every device is denied until Redis answers and we resync.
            FeedLost(ex);
        }

        if (!redis.FeedConnected)
        {
            FeedLost(null); // Redis not there yet (the failure above, if any, was already recorded)
        }

        await base.StartAsync(cancellationToken);
    }

    public override void Dispose()
    {
        _resync.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // A one-second tick: the feed probe, staleness report, resync retries; the registry poll keeps its own interval.
        var poll = options.Value.RegistryPollInterval;
        using var timer = new PeriodicTimer(poll < TimeSpan.FromSeconds(1) ? poll : TimeSpan.FromSeconds(1), timeProvider);
        var lastPoll = timeProvider.GetTimestamp();
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                ReportStaleOnce();
                try
                {
                    await EnsureSubscribedAsync();
                    await ProbeFeedAsync();
                }
                catch (Exception ex) when (RedisFailure.Is(ex) || ex is TimeoutException)
                {
                    FeedLost(ex);
                }

                if (_needsResync && redis.FeedConnected)
                {
                    await ResyncAsync(stoppingToken);
                }

                if (timeProvider.GetElapsedTime(lastPoll) >= poll)
                {
                    lastPoll = timeProvider.GetTimestamp();
                    await SyncRegistryAsync(stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Connects and subscribes once; StackExchange.Redis re-subscribes by itself after every reconnect.</summary>
    private async Task EnsureSubscribedAsync()
    {
        if (_subscriber is not null)
        {
            return;
        }

        var multiplexer = await redis.Connection.ConnectAsync();
        if (!multiplexer.IsConnected)
        {
            // Subscribe once Redis is there: a SUBSCRIBE refused while disconnected may still leave its handler behind,
            // and one more at every retry would apply each message as many times. The feed stays lost until then.
            return;
        }

        if (!_eventsAttached)
        {
            _eventsAttached = true;
            multiplexer.ConnectionFailed += (_, e) =>
            {
                if (e.ConnectionType == ConnectionType.Subscription)
                {
                    FeedLost(e.Exception);
                }
            };
            multiplexer.ConnectionRestored += (_, e) =>
            {
                if (e.ConnectionType == ConnectionType.Subscription)
                {
                    FeedLost(null); // there was a gap, whether or not its start was reported: the probe and a resync follow
                }
            };
        }

        var subscriber = multiplexer.GetSubscriber();
        // Order between messages does not matter (entries carry versions and the cache keeps the newest), so the plain
        // handler form serves; the ordered message queue measured no different.
        await subscriber.SubscribeAsync(RedisChannel.Literal(redis.Store.Channel), (_, message) => OnMessage(message));
        _subscriber = subscriber;
    }

    /// <summary>
    /// A PING on the subscription: answered means the connection is alive and (after a reconnect) the re-subscription,
    /// sent before it on the same connection, is in effect; only then is the feed live and the resync allowed to run,
    /// so no change published during the gap is lost. Unanswered within FeedProbeTimeout: the feed is dead.
    /// </summary>
    private async Task ProbeFeedAsync()
    {
        if (_subscriber is not { } subscriber)
        {
            return;
        }

        // A reconnect the events did not report (it can take milliseconds) still shows as a new subscription socket.
        var sockets = SubscriptionSockets(redis.Connection.Multiplexer);
        await subscriber.PingAsync().WaitAsync(options.Value.FeedProbeTimeout, timeProvider);
        if (!redis.SetFeedConnected(true) || (_subscriptionSockets >= 0 && sockets != _subscriptionSockets))
        {
            _needsResync = true; // cached entries may have missed changes while the feed was down
        }

        _subscriptionSockets = sockets;
    }

    private static long SubscriptionSockets(ConnectionMultiplexer? multiplexer)
    {
        long sockets = 0;
        foreach (var endpoint in multiplexer?.GetEndPoints() ?? [])
        {
            sockets += multiplexer!.GetServer(endpoint).GetCounters().Subscription.SocketCount;
        }

        return sockets;
    }

    private void OnMessage(RedisValue message)
    {
        IReadOnlyList<AllowListEntry> entries;
        try
        {
            entries = AllowListEntryCodec.DecodeBatch((byte[])message!);
        }
        catch (FormatException ex)
        {
            // Something we cannot read may have been a revocation: re-read everything we hold.
            LogMessageRejected(logger, ex);
            _needsResync = true;
            return;
        }

        updates.Apply(entries);
    }

    /// <summary>
    /// The feed went from live to lost (or was never live at start): cached entries are trusted for MaxStaleness more,
    /// a resync is due. Repeated failures while it is down change nothing.
    /// </summary>
    private void FeedLost(Exception? error)
    {
        if (!redis.SetFeedConnected(false) && _lostOnce)
        {
            return;
        }

        _lostOnce = true;
        var now = timeProvider.GetUtcNow();
        var maxStaleness = options.Value.MaxStaleness;
        cache.TrustUntil((now + maxStaleness).UtcTicks);
        _needsResync = true;
        Volatile.Write(ref _staleReported, 0);
        LogFeedLost(logger, error, maxStaleness.TotalSeconds);
        PostSystemEvent(DecisionOutcome.Deny, ReasonCode.AllowListUnavailable, "allow-list:feed-lost");
    }

    private void ReportStaleOnce()
    {
        if (cache.IsStale(timeProvider.GetUtcNow().UtcTicks) && Interlocked.Exchange(ref _staleReported, 1) == 0)
        {
            LogStale(logger, options.Value.MaxStaleness.TotalSeconds);
            PostSystemEvent(DecisionOutcome.Deny, ReasonCode.AllowListStale, "allow-list:stale");
        }
    }

    /// <summary>Re-reads every cached entry from Redis (after a gap in the feed), then trusts the cache again.</summary>
    internal async Task ResyncAsync(CancellationToken cancellationToken)
    {
        if (!await _resync.WaitAsync(0, cancellationToken))
        {
            return; // one resync at a time; the running one covers this request
        }

        try
        {
            ReportStaleOnce(); // the record must show the cache went stale even when the feed returns between ticks
            await SyncRegistryAsync(cancellationToken);
            var store = redis.Store;
            var keys = cache.SnapshotKeys();
            var refreshed = 0;
            var dropped = 0;
            var now = timeProvider.GetUtcNow().UtcTicks;
            for (var i = 0; i < keys.Length; i += 1000)
            {
                var chunk = keys.AsSpan(i, Math.Min(1000, keys.Length - i)).ToArray();
                var seen = new long[chunk.Length];
                for (var j = 0; j < chunk.Length; j++)
                {
                    seen[j] = cache.TryGet(chunk[j], out var e) ? e.Version : -1;
                }

                var fresh = await store.GetManyAsync(chunk, cancellationToken);
                for (var j = 0; j < chunk.Length; j++)
                {
                    if (fresh[j] is { } entry)
                    {
                        refreshed += updates.Apply([entry]);
                    }
                    else if (cache.Remove(chunk[j], seen[j]))
                    {
                        dropped++; // gone from Redis: looked up afresh on the next request
                    }
                }
            }

            cache.ForgetUnknown();
            cache.MarkTrusted();
            _needsResync = false;
            LogResynchronised(logger, keys.Length, refreshed, dropped, TimeSpan.FromTicks(timeProvider.GetUtcNow().UtcTicks - now).TotalMilliseconds);
            PostSystemEvent(DecisionOutcome.Allow, ReasonCode.Allowed, "allow-list:resynchronised");
        }
        catch (Exception ex) when (RedisFailure.Is(ex) || ex is FormatException)
        {
            _needsResync = true;
            LogResyncFailed(logger, ex);
        }
        finally
        {
            _resync.Release();
        }
    }

    private async Task SyncRegistryAsync(CancellationToken cancellationToken)
    {
        if (redis.Synchronizer is not { } synchronizer || !redis.Connection.IsConnected)
        {
            return;
        }

        try
        {
            await synchronizer.SyncAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRedisSyncFailed(logger, ex);
        }
    }

    private void PostSystemEvent(DecisionOutcome outcome, ReasonCode reason, string what)
        => decisions.Post(decisionFactory.System(DecisionListener.Gateway, outcome, reason, what));

    [LoggerMessage(EventId = GatewayEventIds.AllowListRedisConnecting, Level = LogLevel.Information, Message = "Allow list: L1 in front of Redis {Redis}")]
    private static partial void LogConnecting(ILogger logger, string redis);

    [LoggerMessage(EventId = GatewayEventIds.AllowListFeedLost, Level = LogLevel.Error, Message = "Allow-list change feed lost; cached entries stay valid for {MaxStalenessSeconds} s, unknown devices are denied")]
    private static partial void LogFeedLost(ILogger logger, Exception? exception, double maxStalenessSeconds);

    [LoggerMessage(EventId = GatewayEventIds.AllowListStale, Level = LogLevel.Critical, Message = "Allow list stale: no change feed for {MaxStalenessSeconds} s; every device is denied until Redis is back")]
    private static partial void LogStale(ILogger logger, double maxStalenessSeconds);

    [LoggerMessage(EventId = GatewayEventIds.AllowListResynchronised, Level = LogLevel.Information, Message = "Allow list resynchronised with Redis: {Cached} cached, {Refreshed} updated, {Dropped} dropped in {Milliseconds:0} ms; trusted again")]
    private static partial void LogResynchronised(ILogger logger, int cached, int refreshed, int dropped, double milliseconds);

    [LoggerMessage(EventId = GatewayEventIds.AllowListResyncFailed, Level = LogLevel.Error, Message = "Allow-list resync failed; retrying")]
    private static partial void LogResyncFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = GatewayEventIds.AllowListMessageRejected, Level = LogLevel.Error, Message = "Allow-list change message rejected; a resync is scheduled")]
    private static partial void LogMessageRejected(ILogger logger, Exception? exception);

    [LoggerMessage(EventId = GatewayEventIds.AllowListRedisSyncFailed, Level = LogLevel.Warning, Message = "Registry-to-Redis synchronisation failed; retrying")]
    private static partial void LogRedisSyncFailed(ILogger logger, Exception exception);
}
