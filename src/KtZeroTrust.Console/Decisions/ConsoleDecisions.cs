using System.Runtime.CompilerServices;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Monitoring.Store;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.SocConsole.Decisions;

/// <summary>
/// Where the console reads decisions: the decision store when there is one (indexed: the embedded SQLite file, or the
/// fleet's PostgreSQL). Without one, the node's own decision log, or with a shared Redis Stream the stream (the whole
/// fleet's decisions, trimmed); those reads seek and stop early: newest first (XREVRANGE between the range's entry ids;
/// the newest log file first, rolled files that end before the range skipped) until enough are found.
/// </summary>
public sealed class ConsoleDecisions(string logPath, RedisConnection? redis = null, string streamKey = RedisStreamSink.DefaultStreamKey, IDecisionStore? store = null)
{
    private const int Page = 1000;

    // Entry ids start with the time they were added, at or after the decision's own time: a minute of slack either side.
    private static readonly TimeSpan Slack = TimeSpan.FromMinutes(1);

    public bool FleetWide => redis is not null;

    /// <summary>The store, when decisions are stored (summaries over any range, exports); null: log or stream only.</summary>
    public IDecisionStore? Store => store;

    /// <summary>The newest decisions that match the filter, newest first.</summary>
    public async Task<IReadOnlyList<JournaledDecision>> QueryAsync(DecisionFilter filter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return store is not null
            ? await store.QueryAsync(filter, cancellationToken)
            : await LatestAsync(filter.Matches, filter.Limit, cancellationToken, filter.Since, filter.Until);
    }

    internal RedisConnection? Redis => redis;

    internal string StreamKey => streamKey;

    /// <summary>The newest <paramref name="limit"/> decisions that match, newest first, in [<paramref name="since"/>, <paramref name="until"/>].</summary>
    public async Task<List<JournaledDecision>> LatestAsync(Func<DecisionEvent, bool> match, int limit, CancellationToken cancellationToken,
        DateTimeOffset? since = null, DateTimeOffset? until = null)
    {
        ArgumentNullException.ThrowIfNull(match);
        var (from, to) = (since ?? DateTimeOffset.MinValue, until ?? DateTimeOffset.MaxValue);
        bool Wanted(JournaledDecision e) => e.Event.Time >= from && e.Event.Time <= to && match(e.Event);
        var found = new List<JournaledDecision>();
        if (redis is null)
        {
            // Newest file first; within a file, forward (a JSON-lines file is read forward), keeping the newest.
            foreach (var file in DecisionLogReader.Files(logPath).Reverse().Where(f => !EndsBefore(f, from)))
            {
                var inFile = new Queue<JournaledDecision>();
                await foreach (var e in DecisionLogReader.ReadAsync(file, onlyThisFile: true, cancellationToken))
                {
                    if (Wanted(e))
                    {
                        inFile.Enqueue(e);
                        if (inFile.Count > limit - found.Count)
                        {
                            inFile.Dequeue();
                        }
                    }
                }

                found.AddRange(inFile.Reverse());
                if (found.Count >= limit)
                {
                    break;
                }
            }

            return found;
        }

        var end = StreamId(to, Slack) ?? "+";
        var start = StreamId(from, -Slack) ?? "-";
        var db = await redis.DatabaseAsync();
        while (found.Count < limit)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var page = await db.StreamRangeAsync(streamKey, start, end, Page, Order.Descending);
            foreach (var entry in page)
            {
                // An entry may hold several decisions, oldest first: newest first means from its end.
                var events = DecisionStreamEntry.Read(entry, out _);
                for (var i = events.Count - 1; i >= 0 && found.Count < limit; i--)
                {
                    if (Wanted(events[i]))
                    {
                        found.Add(events[i]);
                    }
                }
            }

            if (page.Length < Page)
            {
                break;
            }

            end = "(" + page[^1].Id;
        }

        return found;
    }

    /// <summary>A stream id bound at <paramref name="at"/> (shifted by <paramref name="slack"/>), or null for an open end.</summary>
    private static string? StreamId(DateTimeOffset at, TimeSpan slack)
    {
        if (at <= DateTimeOffset.UnixEpoch + Slack || at >= DateTimeOffset.MaxValue - Slack)
        {
            return null;
        }

        var ms = (at + slack).ToUnixTimeMilliseconds();
        return slack < TimeSpan.Zero ? $"{ms}-0" : $"{ms}-18446744073709551615";
    }

    /// <summary>
    /// A rolled log file is named for the time it was rolled (decisions-yyyyMMddTHHmmssfff.jsonl), after its last
    /// decision: it ends before <paramref name="since"/> when that time does (the index over rolled files, from their names).
    /// </summary>
    private static bool EndsBefore(string file, DateTimeOffset since)
    {
        var name = Path.GetFileNameWithoutExtension(file);
        var dash = name.LastIndexOf('-');
        return dash > 0 && DateTime.TryParseExact(name[(dash + 1)..], "yyyyMMdd'T'HHmmssfff", System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal, out var rolled)
            && new DateTimeOffset(rolled, TimeSpan.Zero) < since;
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

                await feed.WriteBatchAsync([.. page.SelectMany(entry => DecisionStreamEntry.Read(entry, out _))], stoppingToken);
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

    [LoggerMessage(EventId = ConsoleEventIds.ConsoleFeedFailed, Level = LogLevel.Warning, Message = "Console live feed: reading the decision stream failed; retrying")]
    private static partial void LogFeedFailed(ILogger logger, Exception exception);
}
