using System.Text.Json;
using StackExchange.Redis;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Redis;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.Logging.Abstractions;

namespace KtZeroTrust.Monitoring.Tests;

internal static class Events
{
    /// <summary>As the pipeline carries it (serialized once), with its journal position.</summary>
    public static JournaledDecision Journaled(int i, long sequence = 0) => JournaledDecision.Of(Make(i), sequence);

    public static DecisionEvent Make(int i) => new()
    {
        Id = $"ID{i:D24}",
        Time = new DateTimeOffset(2026, 11, 22, 1, 2, 3, TimeSpan.Zero).AddMilliseconds(i),
        Listener = DecisionListener.Device,
        Subject = "FC-0001",
        SourceAddress = "127.0.0.1",
        SourcePort = 40000 + (i % 20000),
        Method = "GET",
        Path = "/femto/\"quoted\"",
        Route = "r",
        Outcome = i % 2 == 0 ? DecisionOutcome.Allow : DecisionOutcome.Deny,
        Reason = i % 2 == 0 ? ReasonCode.Allowed : ReasonCode.DeviceRevoked,
        CertificateHash = new string('a', 64),
        LatencyMicroseconds = 12.3,
    };

    public static DecisionPipeline Pipeline(string spool, params IDecisionExportSink[] sinks)
        => new(sinks, new DecisionPipelineOptions { SpoolDirectory = spool, RetryDelay = TimeSpan.FromMilliseconds(50) }, NullLogger<DecisionPipeline>.Instance);
}

public sealed class DecisionPipelineFileTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task PostedDecisions_AreWrittenOnePerLine_AndAllFlushedOnStop()
    {
        using var temp = new TempDirectory();
        var file = new JsonLinesFileSink(temp.Combine("sub", "decisions.jsonl"));
        var pipeline = Events.Pipeline(temp.Combine("spool"), file);
        await pipeline.StartAsync(Ct);
        for (var i = 0; i < 5000; i++)
        {
            pipeline.Post(Events.Make(i));
        }

        await pipeline.StopAsync(Ct);

        var lines = await File.ReadAllLinesAsync(file.FilePath, Ct);
        Assert.Equal(5000, lines.Length);
        var first = DecisionJson.Read(System.Text.Encoding.UTF8.GetBytes(lines[1]));
        Assert.Equal(("ID000000000000000000000001", DecisionOutcome.Deny, ReasonCode.DeviceRevoked, "/femto/\"quoted\""), (first.Id, first.Outcome, first.Reason, first.Path));
        Assert.Equal(5000, lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()).Distinct().Count());
        Assert.Equal((5000L, 0L), (pipeline.Posted, pipeline.Dropped));
    }

    [Fact]
    public void Spool_ReplaysInOrder_ResumesAfterReopen_AndIgnoresATornTail()
    {
        using var temp = new TempDirectory();
        var spool = new DiskSpool(temp.Path, "sink");
        spool.Append([Events.Journaled(1), Events.Journaled(2)]);
        spool.Append([Events.Journaled(3)]);
        var (first, next) = spool.Peek(2);
        Assert.Equal(["ID000000000000000000000001", "ID000000000000000000000002"], first.Select(e => e.Event.Id));
        spool.Commit(next);

        File.AppendAllText(temp.Combine("sink.spool"), "\0\0\0\u0050{\"id\""); // a crash in the middle of an append
        var reopened = new DiskSpool(temp.Path, "sink"); // resumes at the committed position, cuts the torn tail
        reopened.Append([Events.Journaled(4)]);
        var (rest, end) = reopened.Peek(10);
        Assert.Equal(["ID000000000000000000000003", "ID000000000000000000000004"], rest.Select(e => e.Event.Id));
        reopened.Commit(end);
        Assert.True(reopened.IsEmpty);
    }
}

/// <summary>The loss test: Redis killed in the middle of a run and restarted; every decision ends up in the stream.</summary>
public sealed class DecisionPipelineRedisTests(PersistentRedisServerFixture redis) : IClassFixture<PersistentRedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RedisKilledMidRun_EveryDecisionReachesTheStream_ExactlyOnceAfterDeduplication()
    {
        using var temp = new TempDirectory();
        var options = redis.Configuration + ",abortConnect=false,commandTimeout=1000,connectTimeout=500";
        await using var client = new RedisConnection(options);
        var stream = "zt:decisions:" + Guid.NewGuid().ToString("N");
        // A small in-memory queue, so the outage's decisions take the spool (the path under test), not only memory.
        var pipeline = new DecisionPipeline([new RedisStreamSink(client, stream), new JsonLinesFileSink(temp.Combine("decisions.jsonl"))],
            new DecisionPipelineOptions { SpoolDirectory = temp.Combine("spool"), RetryDelay = TimeSpan.FromMilliseconds(50), SinkQueueCapacity = 2048 }, NullLogger<DecisionPipeline>.Instance);
        await pipeline.StartAsync(Ct);

        const int total = 30_000;
        var posting = Task.Run(async () =>
        {
            for (var i = 0; i < total; i++)
            {
                pipeline.Post(Events.Make(i));
                if (i % 1000 == 999)
                {
                    // Post at the pace the pipeline dispatches (the file lane never stalls), so the kill lands mid-run.
                    var posted = i + 1;
                    await Eventually.Until(() => Task.FromResult(pipeline.Sinks[1].Written), n => n >= posted, "the file lane to keep up");
                }
            }
        }, Ct);

        await Eventually.Until(() => Task.FromResult(pipeline.Sinks[0].Written), n => n > 3000, "decisions in the stream before the kill");
        await redis.StopAsync(); // kill -9 mid-run
        await Eventually.Until(() => Task.FromResult(pipeline.Sinks[0].Spooled), n => n > 0, "the stream's lane to spool");
        await redis.StartAsync();
        await posting;
        await Eventually.Until(() => Task.FromResult(pipeline.Sinks[0]), s => !s.Spooling && s.Written >= total, "the spool to be replayed", TimeSpan.FromSeconds(60));
        await pipeline.StopAsync(Ct);

        // Read back with a realistic timeout: the pipeline's client has 1 s on purpose (the kill), a busy machine's
        // XRANGE of 5,000 entries may take longer than that.
        await using var readerConnection = new RedisConnection(redis.Configuration + ",commandTimeout=30000");
        var reader = await readerConnection.DatabaseAsync();
        var ids = new HashSet<string>();
        var firstSeen = new List<string>();
        var entries = 0;
        var last = "-";
        while (true)
        {
            var page = await reader.StreamRangeAsync(stream, last == "-" ? "-" : "(" + last, "+", 1000);
            if (page.Length == 0)
            {
                break;
            }

            foreach (var entry in page)
            {
                if (!entry["id"].ToString()!.StartsWith("ID", StringComparison.Ordinal))
                {
                    continue; // the pipeline's own alerts (the spool grew while Redis was down) are in the stream too
                }

                entries++;
                if (ids.Add(entry["id"].ToString()!))
                {
                    firstSeen.Add(entry["id"].ToString()!);
                }
            }

            last = page[^1].Id.ToString();
        }

        Assert.Equal(total, ids.Count); // every decision made is there (duplicates allowed: at least once)
        Assert.Equal(firstSeen.Order(StringComparer.Ordinal), firstSeen); // and in the order they were made
        Assert.True(entries >= total);
        Assert.Equal(0, pipeline.Dropped);
        Assert.Equal(0, pipeline.Sinks[0].Lost);
        Assert.Equal(total, (await File.ReadAllLinesAsync(temp.Combine("decisions.jsonl"), Ct)).Count(l => l.StartsWith("{\"id\":\"ID", StringComparison.Ordinal))); // the file lane never stalled
    }

    [Theory]
    [InlineData(1, 7)]
    [InlineData(3, 3)] // 3 + 3 + 1
    [InlineData(1000, 1)]
    public async Task SeveralDecisionsPerEntry_AreReadBackInOrder_AndAnUnreadableOneCostsOnlyItself(int eventsPerEntry, int expectedEntries)
    {
        await using var client = new RedisConnection(redis.Configuration);
        var stream = "zt:decisions:" + Guid.NewGuid().ToString("N");
        var written = Enumerable.Range(0, 7).Select(i => Events.Journaled(i)).ToList();

        await new RedisStreamSink(client, stream, eventsPerEntry: eventsPerEntry).WriteBatchAsync(written, Ct);

        var db = await client.DatabaseAsync();
        var entries = await db.StreamRangeAsync(stream);
        Assert.Equal(expectedEntries, entries.Length);
        var read = entries.SelectMany(e => DecisionStreamEntry.Read(e, out _)).ToList();
        Assert.Equal(written.Select(e => (e.Event.Id, e.Event.Path, e.Event.Reason, e.Event.Time)), read.Select(e => (e.Event.Id, e.Event.Path, e.Event.Reason, e.Event.Time)));
        Assert.All(entries, e => Assert.StartsWith("ID", e["id"].ToString(), StringComparison.Ordinal)); // the first decision's id

        // A foreign writer's broken line inside a multi-event entry: the others in it are still read.
        await db.StreamAddAsync(stream, [new("id", "x"), new("count", 3), new(DecisionStreamEntry.EventsField,
            System.Text.Encoding.UTF8.GetBytes($"{{\"id\":\"torn\n{System.Text.Json.JsonSerializer.Serialize(new { id = "ID-A", time = "2026-11-22T01:02:03Z", kind = "access", listener = "device", outcome = "deny", reason = "device_revoked" })}"))]);
        var last = (await db.StreamRangeAsync(stream))[^1];
        var survivors = DecisionStreamEntry.Read(last, out var unreadable);
        Assert.Equal(1, unreadable);
        Assert.Equal("ID-A", Assert.Single(survivors).Event.Id);
    }

    [Fact]
    public async Task DecisionsSpooledWhileRedisWasUnreachable_AreDeliveredByTheNextRun()
    {
        using var temp = new TempDirectory();
        var stream = "zt:decisions:" + Guid.NewGuid().ToString("N");
        await using (var dead = new RedisConnection($"127.0.0.1:{FreePorts.Next()},abortConnect=false,connectTimeout=200"))
        {
            var first = Events.Pipeline(temp.Combine("spool"), new RedisStreamSink(dead, stream));
            await first.StartAsync(Ct);
            for (var i = 0; i < 100; i++)
            {
                first.Post(Events.Make(i));
            }

            await first.StopAsync(Ct);
            Assert.Equal(100, first.Sinks[0].Spooled);
        }

        await using var live = new RedisConnection(redis.Configuration);
        var second = Events.Pipeline(temp.Combine("spool"), new RedisStreamSink(live, stream));
        await second.StartAsync(Ct);
        var db = await live.DatabaseAsync();
        await Eventually.Until(() => db.StreamLengthAsync(stream), n => n == 100, "the previous run's spool to be delivered");
        await second.StopAsync(Ct);
        Assert.Equal("ID000000000000000000000000", (await db.StreamRangeAsync(stream, count: 1))[0]["id"].ToString());
    }
}
