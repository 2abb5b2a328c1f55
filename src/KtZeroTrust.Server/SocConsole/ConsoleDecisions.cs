using System.Runtime.CompilerServices;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.Server.SocConsole;

/// <summary>
/// Where the console reads decisions. Alone, the node's own decision log. With a shared Redis Stream, the stream: the
/// whole fleet's decisions, so a SOC node that serves no device still shows every gateway node's traffic.
/// </summary>
public sealed class ConsoleDecisions(string logPath, RedisConnection? redis = null, string streamKey = RedisStreamSink.DefaultStreamKey)
{
    private const int Page = 1000;

    public bool FleetWide => redis is not null;

    internal RedisConnection? Redis => redis;

    internal string StreamKey => streamKey;

    /// <summary>Oldest first, from <paramref name="since"/> on (the stream is read from that time's entry id; the log is filtered).</summary>
    public async IAsyncEnumerable<DecisionEvent> ReadAsync(DateTimeOffset since, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (redis is null)
        {
            await foreach (var e in DecisionLogReader.ReadAsync(logPath, cancellationToken))
            {
                if (e.Time >= since)
                {
                    yield return e;
                }
            }

            yield break;
        }

        // Entry ids start with the time they were added, at or after the decision's own time: a minute of slack.
        var start = since <= DateTimeOffset.UnixEpoch.AddMinutes(1) ? "-" : $"{since.AddMinutes(-1).ToUnixTimeMilliseconds()}-0";
        var db = await redis.DatabaseAsync();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var page = await db.StreamRangeAsync(streamKey, start, "+", Page);
            foreach (var entry in page)
            {
                foreach (var e in DecisionStreamEntry.Read(entry, out _))
                {
                    if (e.Time >= since)
                    {
                        yield return e;
                    }
                }
            }

            if (page.Length < Page)
            {
                yield break;
            }

            start = "(" + page[^1].Id;
        }
    }
}

/// <summary>
/// With a shared Redis Stream, the console's live feed, chart and last sightings follow the stream (every node's
/// decisions, this one's included) instead of this node's pipeline. Starts at the stream's end; polls every 250 ms.
/// </summary>
internal sealed partial class StreamConsoleFeedService(ConsoleDecisions decisions, ConsoleFeed feed, ILogger<StreamConsoleFeedService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var redis = decisions.Redis!;
        string? last = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var db = await redis.DatabaseAsync();
                if (last is null)
                {
                    var newest = await db.StreamRangeAsync(decisions.StreamKey, count: 1, messageOrder: Order.Descending);
                    last = newest.Length == 0 ? "0-0" : newest[0].Id.ToString();
                }

                var page = await db.StreamRangeAsync(decisions.StreamKey, "(" + last, "+", 1000);
                if (page.Length == 0)
                {
                    await Task.Delay(250, stoppingToken);
                    continue;
                }

                await feed.WriteBatchAsync(page.SelectMany(entry => DecisionStreamEntry.Read(entry, out _)).ToList(), stoppingToken);
                last = page[^1].Id.ToString();
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogFeedFailed(logger, ex); // Redis away: the feed resumes after the last entry shown, and never stops the host
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken); // cancelled on stop: the host expects that
            }
        }
    }

    [LoggerMessage(EventId = ServerEventIds.ConsoleFeedFailed, Level = LogLevel.Warning, Message = "Console live feed: reading the decision stream failed; retrying")]
    private static partial void LogFeedFailed(ILogger logger, Exception exception);
}
