using StackExchange.Redis;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Redis;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.Logging.Abstractions;

namespace KtZeroTrust.Monitoring.Tests;

/// <summary>
/// The process dying: a pipeline abandoned without its orderly stop (as SIGKILL leaves it: the journal's writes are in
/// the operating system, everything in memory is gone), then a new pipeline over the same directory.
/// </summary>
public sealed class DecisionJournalTests(PersistentRedisServerFixture redis) : IClassFixture<PersistentRedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static DecisionPipeline Pipeline(string spool, params IDecisionExportSink[] sinks)
        => new(sinks, new DecisionPipelineOptions { SpoolDirectory = spool, RetryDelay = TimeSpan.FromMilliseconds(50), CheckpointInterval = TimeSpan.FromMilliseconds(20) }, NullLogger<DecisionPipeline>.Instance);

    [Fact]
    public async Task DecisionsHeldOnlyInMemoryForADownRedis_ReachTheStreamAfterTheProcessDiesAndRestarts()
    {
        using var temp = new TempDirectory();
        var stream = "zt:decisions:" + Guid.NewGuid().ToString("N");
        var options = redis.Configuration + ",abortConnect=false,commandTimeout=1000,connectTimeout=500";
        await redis.StopAsync(); // Redis is down for the whole first run
        var down = new RedisConnection(options);
        var first = Pipeline(temp.Combine("spool"), new RedisStreamSink(down, stream), new JsonLinesFileSink(temp.Combine("decisions.jsonl")));
        await first.StartAsync(Ct);
        const int total = 2000;
        for (var i = 0; i < total; i++)
        {
            first.Post(Events.Make(i));
        }

        // Every request waits for this before its answer completes: the decisions are journaled.
        await first.WaitDurableAsync(total);
        Assert.Equal(0, first.Sinks[0].Written);
        Assert.Equal(0, first.Sinks[0].Spooled); // the Redis lane holds them in memory only: a crash now lost them before
        // The process dies here: no StopAsync, nothing flushed, nothing spooled; its lanes stop and its client goes.
        first.Dispose();
        await down.DisposeAsync();

        await redis.StartAsync();
        await using var up = new RedisConnection(options);
        var second = Pipeline(temp.Combine("spool"), new RedisStreamSink(up, stream), new JsonLinesFileSink(temp.Combine("decisions.jsonl")));
        await second.StartAsync(Ct);
        await Eventually.Until(() => Task.FromResult(second.Sinks[0]), s => !s.Spooling && s.Written >= total, "the journal's replay to reach the stream", TimeSpan.FromSeconds(60));
        await second.StopAsync(Ct);

        await using var reader = new RedisConnection(redis.Configuration + ",commandTimeout=30000");
        var ids = (await DecisionStreamReading.DecisionIdsAsync(reader, stream, Ct)).ToHashSet();
        Assert.Equal(total, ids.Count);
        Assert.All(Enumerable.Range(0, total), i => Assert.Contains(Events.Make(i).Id, ids));
    }

    [Fact]
    public async Task ACheckpointedSink_IsNotReplayedAgain_AndSegmentsEverySinkIsPastAreDeleted()
    {
        using var temp = new TempDirectory();
        var file = new JsonLinesFileSink(temp.Combine("decisions.jsonl"));
        var first = Pipeline(temp.Combine("spool"), file);
        await first.StartAsync(Ct);
        for (var i = 0; i < 500; i++)
        {
            first.Post(Events.Make(i));
        }

        await first.StopAsync(Ct); // orderly: checkpoints saved

        var second = Pipeline(temp.Combine("spool"), new JsonLinesFileSink(temp.Combine("decisions.jsonl")));
        await second.StartAsync(Ct);
        second.Post(Events.Make(500));
        await second.StopAsync(Ct);

        var lines = await File.ReadAllLinesAsync(temp.Combine("decisions.jsonl"), Ct);
        Assert.Equal(501, lines.Length); // nothing written twice
    }

    [Fact]
    public void AJournalAppendCutShort_IsCutBackAtOpen_AndTheSequenceResumesAfterTheLastWholeRecord()
    {
        using var temp = new TempDirectory();
        using (var journal = new DecisionJournal(temp.Path))
        {
            var batch = Enumerable.Range(1, 3).Select(i => Events.Journaled(i, i)).ToList();
            journal.Append(batch);
        }

        var segment = Directory.GetFiles(temp.Path, "*.journal").Single();
        File.AppendAllText(segment, "\0\0\0\u0090\0\0\0\0\0\0\0\u0004{\"id\":"); // a full disk or a kill mid-append

        using var reopened = new DecisionJournal(temp.Path);
        Assert.Equal(3, reopened.LastSequence);
        Assert.Equal([2L, 3L], reopened.ReadAfter(1).Select(e => e.Sequence));

        var next = Events.Journaled(4, 4);
        reopened.Append([next]); // continues the same segment, after the cut
        Assert.Equal([1L, 2L, 3L, 4L], reopened.ReadAfter(0).Select(e => e.Sequence));
        Assert.Single(Directory.GetFiles(temp.Path, "*.journal"));
    }
}
