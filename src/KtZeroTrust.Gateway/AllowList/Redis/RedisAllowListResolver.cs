using System.Collections.Concurrent;
using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Redis;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Gateway.AllowList.Redis;

/// <summary>
/// L1 misses: Redis first, then (on nodes that have it) the registry, whose answer is written back to Redis.
/// Concurrent misses for one certificate share one lookup; at most <see cref="AllowListOptions.MaxConcurrentLookups"/>
/// run at once and a miss beyond that is denied rather than queued, so a flood of unknown certificates cannot pile up
/// requests or hammer Redis. Without the change feed nothing is looked up: an entry cached then would never learn of
/// its revocation.
/// </summary>
internal sealed partial class RedisAllowListResolver(
    GatewayRedis redis,
    IOptions<AllowListOptions> options,
    TimeProvider timeProvider,
    ILogger<RedisAllowListResolver> logger,
    IAllowListSource? registry = null) : IAllowListResolver
{
    private static readonly Task<AllowListResolution> Unavailable = Task.FromResult(new AllowListResolution(ResolutionStatus.Unavailable, null));
    private readonly ConcurrentDictionary<CertificateHash, Task<AllowListResolution>> _inflight = new();
    private int _active;

    public async Task<AllowListResolution> ResolveAsync(CertificateHash hash, CancellationToken cancellationToken)
    {
        if (!redis.FeedConnected)
        {
            return await Unavailable;
        }

        var task = _inflight.GetOrAdd(hash, Start);
        if (task.IsCompleted)
        {
            _inflight.TryRemove(new KeyValuePair<CertificateHash, Task<AllowListResolution>>(hash, task));
        }

        return await task.WaitAsync(cancellationToken);
    }

    private Task<AllowListResolution> Start(CertificateHash hash)
    {
        if (Interlocked.Increment(ref _active) > options.Value.MaxConcurrentLookups)
        {
            Interlocked.Decrement(ref _active);
            return Unavailable;
        }

        var task = LookupAsync(hash);
        _ = task.ContinueWith(
            (t, state) =>
            {
                Interlocked.Decrement(ref _active);
                _inflight.TryRemove(new KeyValuePair<CertificateHash, Task<AllowListResolution>>((CertificateHash)state!, t));
            },
            hash,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        return task;
    }

    private async Task<AllowListResolution> LookupAsync(CertificateHash hash)
    {
        try
        {
            var store = redis.Store;
            if (await store.GetAsync(hash) is { } cached)
            {
                return new AllowListResolution(ResolutionStatus.Found, cached);
            }

            if (registry is not null && await registry.FindAllowListEntryAsync(hash) is { } entry)
            {
                // Fill L2 for the other nodes; versioned, so it cannot undo a newer change.
                _ = store.WriteAsync([entry], timeProvider.GetUtcNow()).ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
                return new AllowListResolution(ResolutionStatus.Found, entry);
            }

            return new AllowListResolution(ResolutionStatus.NotFound, null);
        }
        catch (Exception ex) when (RedisFailure.Is(ex) || ex is FormatException or InvalidOperationException or System.Data.Common.DbException)
        {
            LogLookupFailed(logger, ex, hash.ToString());
            return new AllowListResolution(ResolutionStatus.Unavailable, null);
        }
    }

    [LoggerMessage(EventId = GatewayEventIds.AllowListLookupFailed, Level = LogLevel.Warning, Message = "Allow-list lookup of certificate {CertificateSha256} failed; the request is denied")]
    private static partial void LogLookupFailed(ILogger logger, Exception exception, string certificateSha256);
}
