using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Redis;
using StackExchange.Redis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KtZeroTrust.Monitoring.Detectors;

/// <summary>
/// Embedded mode: the detectors as one more lane of the pipeline, so they get every decision of this node in order,
/// at least once, with the lane's spool when they are behind or stopped. Resolved lazily: the detectors themselves post
/// alerts into the pipeline.
/// </summary>
public sealed class DetectorFeedSink(IServiceProvider services) : IDecisionExportSink
{
    // Resolved at the first batch, not injected: the detectors post their alerts to the pipeline this sink is a lane of.
    public string Name => "detectors";

    public Task WriteBatchAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken)
        => services.GetRequiredService<DetectorService>().ProcessAsync([.. batch.Select(e => e.Event)], null, cancellationToken);
}

/// <summary>The state in a file, replaced atomically (written aside, then renamed).</summary>
public sealed class FileDetectorStateStore(string path) : IDetectorStateStore
{
    public async Task<string?> LoadAsync(CancellationToken cancellationToken)
        => File.Exists(path) ? await File.ReadAllTextAsync(path, cancellationToken) : null;

    public async Task SaveAsync(string snapshot, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temporary = path + ".tmp";
        await File.WriteAllTextAsync(temporary, snapshot, cancellationToken);
        File.Move(temporary, path, overwrite: true);
    }
}

/// <summary>The state in a Redis key, shared by the nodes so the next leader continues from it.</summary>
public sealed class RedisDetectorStateStore(RedisConnection redis, string key = "zt:detectors:state") : IDetectorStateStore
{
    public async Task<string?> LoadAsync(CancellationToken cancellationToken)
        => (string?)await (await redis.DatabaseAsync()).StringGetAsync(key).WaitAsync(cancellationToken);

    public async Task SaveAsync(string snapshot, CancellationToken cancellationToken)
        => await (await redis.DatabaseAsync()).StringSetAsync(key, snapshot).WaitAsync(cancellationToken);
}

/// <summary>
/// Redis mode: every node's decisions are in one stream; one node at a time (holding a lease key) reads it from the
/// saved position, so detection sees the whole fleet (a clone through two nodes) and is neither split nor repeated.
/// A node that takes the lease loads the saved state; with none, it rebuilds from the stream's recent past.
/// </summary>
public sealed partial class RedisStreamDetectorFeed(
    RedisConnection redis,
    string streamKey,
    string node,
    DetectorOptions options,
    TimeProvider timeProvider,
    ILogger<RedisStreamDetectorFeed> logger,
    string leaseKey = "zt:detectors:leader",
    TimeSpan? lease = null) : IDetectorFeed
{
    private readonly TimeSpan _lease = lease ?? TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);

    // KEYS[1] lease; ARGV[1] node, ARGV[2] lease ms. Take it when free, extend it when ours.
    private const string TakeOrRenew = """
        local holder = redis.call('GET', KEYS[1])
        if holder == false or holder == ARGV[1] then
          redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
          return 1
        end
        return 0
        """;

    private const string Release = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """;

    public async Task RunAsync(DetectorService detectors, CancellationToken stoppingToken)
    {
        ArgumentNullException.ThrowIfNull(detectors);
        var renewAt = DateTimeOffset.MinValue; // take or extend the lease a third of its length after the last time
        string? start = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var db = await redis.DatabaseAsync();
                var now = timeProvider.GetUtcNow();
                if (now >= renewAt)
                {
                    var ours = (long)await db.ScriptEvaluateAsync(TakeOrRenew, [leaseKey], [node, (long)_lease.TotalMilliseconds]) == 1;
                    if (ours && !detectors.Active)
                    {
                        await detectors.ReloadAsync(stoppingToken);
                        start = detectors.Engine.Position is { } position
                            ? "(" + position
                            : $"{(now - options.RebuildWindow).ToUnixTimeMilliseconds()}-0"; // no saved state: rebuild from the recent past
                        LogLeading(logger, node, start);
                    }
                    else if (!ours && detectors.Active)
                    {
                        LogFollowing(logger, node);
                    }

                    detectors.Active = ours;
                    renewAt = now + (_lease / 3);
                }

                if (!detectors.Active)
                {
                    await Task.Delay(_lease / 3, timeProvider, stoppingToken);
                    continue;
                }

                var page = await db.StreamRangeAsync(streamKey, start!, "+", 1000);
                if (page.Length == 0)
                {
                    await Task.Delay(Poll, timeProvider, stoppingToken);
                    continue;
                }

                var events = new List<DecisionEvent>(page.Length);
                foreach (var entry in page)
                {
                    events.AddRange(Sinks.DecisionStreamEntry.Read(entry, out var unreadable).Select(e => e.Event));
                    if (unreadable > 0 || entry.Values.Length == 0)
                    {
                        LogUnreadable(logger, entry.Id.ToString()); // skipped, never stops detection
                    }
                }

                await detectors.ProcessAsync(events, page[^1].Id.ToString(), stoppingToken);
                start = "(" + page[^1].Id;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Redis away, or the registry while acting on a finding: the batch was not committed, so it is read again.
                LogFeedFailed(logger, ex);
                detectors.Active = false; // the lease may lapse meanwhile: take it (and the saved state) again
                renewAt = DateTimeOffset.MinValue;
                await DelayQuietlyAsync(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }

        if (detectors.Active)
        {
            try
            {
                await detectors.SaveAsync(CancellationToken.None);
                await (await redis.DatabaseAsync()).ScriptEvaluateAsync(Release, [leaseKey], [node]);
                detectors.Active = false;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Redis away, or the registry while acting on a finding: the batch was not committed, so it is read again.
                LogFeedFailed(logger, ex); // the lease expires by itself
            }
        }
    }

    private async Task DelayQuietlyAsync(TimeSpan delay, CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(delay, timeProvider, stoppingToken);
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(EventId = MonitoringEventIds.DetectorLeading, Level = LogLevel.Information, Message = "Detectors: {Node} leads, reading the decision stream from {Start}")]
    private static partial void LogLeading(ILogger logger, string node, string start);

    [LoggerMessage(EventId = MonitoringEventIds.DetectorFollowing, Level = LogLevel.Information, Message = "Detectors: {Node} no longer leads")]
    private static partial void LogFollowing(ILogger logger, string node);

    [LoggerMessage(EventId = MonitoringEventIds.DetectorEntryUnreadable, Level = LogLevel.Warning, Message = "Detectors: stream entry {Id} is not a decision; skipped")]
    private static partial void LogUnreadable(ILogger logger, string id);

    [LoggerMessage(EventId = MonitoringEventIds.DetectorFeedFailed, Level = LogLevel.Warning, Message = "Detectors: reading or judging the stream failed; retrying")]
    private static partial void LogFeedFailed(ILogger logger, Exception exception);
}
