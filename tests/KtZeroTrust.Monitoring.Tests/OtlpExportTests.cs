using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.Otlp;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Monitoring.Tests;

public sealed class OtlpExportTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Decisions_ArriveAtTheCollector_AsLogRecords_WithTheirFieldsAndTime()
    {
        await using var receiver = new OtlpReceiver();
        using var temp = new TempDirectory();
        using var sink = new OtlpLogSink(new OtlpOptions { Endpoint = receiver.Endpoint, Timeout = TimeSpan.FromSeconds(5) }, "node-a");
        var pipeline = Events.Pipeline(temp.Combine("spool"), sink);
        await pipeline.StartAsync(Ct);
        for (var i = 0; i < 1200; i++)
        {
            pipeline.Post(Events.Make(i));
        }

        await Eventually.Until(() => pipeline.Sinks[0].Written == 1200, "1,200 decisions exported");
        await pipeline.StopAsync(Ct);

        // At least once: an export the collector took but answered too late for a loaded machine is sent again.
        var byId = receiver.Logs.GroupBy(l => (string)l.Attributes["zt.decision.id"]).ToDictionary(g => g.Key, g => g.First());
        Assert.Equal(1200, byId.Count);
        Assert.True(receiver.Logs.Count == 1200 || pipeline.Sinks[0].LastError is not null, "duplicates without a failed export");
        var deny = byId[Events.Make(7).Id];
        Assert.Equal(Events.Make(7).Time, deny.Time);
        Assert.Equal("deny", deny.Attributes["zt.outcome"]);
        Assert.Equal("device_revoked", deny.Attributes["zt.reason"]);
        Assert.Equal("FC-0001", deny.Attributes["zt.subject"]);
        Assert.Equal("127.0.0.1", deny.Attributes["client.address"]);
        Assert.Equal("/femto/\"quoted\"", deny.Attributes["url.path"]);
        Assert.Equal(13, deny.SeverityNumber); // WARN
        Assert.Equal("ktzerotrust", deny.Resource["service.name"]);
        Assert.Equal("node-a", deny.Resource["service.instance.id"]);
        Assert.Equal(9, byId[Events.Make(8).Id].SeverityNumber); // INFO for an allow
    }

    [Fact]
    public async Task CollectorDown_BatchesGoToTheSpool_AndArriveOnceItAnswersAgain()
    {
        await using var receiver = new OtlpReceiver { FailRequests = true };
        using var temp = new TempDirectory();
        using var sink = new OtlpLogSink(new OtlpOptions { Endpoint = receiver.Endpoint, Timeout = TimeSpan.FromSeconds(5) }, "node-a");
        var pipeline = Events.Pipeline(temp.Combine("spool"), sink);
        await pipeline.StartAsync(Ct);
        for (var i = 0; i < 300; i++)
        {
            pipeline.Post(Events.Make(i));
        }

        await Eventually.Until(() => receiver.RefusedRequests > 0 && pipeline.Sinks[0].LastError is not null, "the refused export to be seen", TimeSpan.FromSeconds(20));
        Assert.Empty(receiver.Logs);
        Assert.Equal(0, pipeline.Sinks[0].Written);

        receiver.FailRequests = false;
        await Eventually.Until(() => receiver.Logs.Select(l => l.Attributes["zt.decision.id"]).Distinct().Count() == 300, "all 300 decisions at the collector", TimeSpan.FromSeconds(30));
        await pipeline.StopAsync(Ct);
        Assert.Equal(300, pipeline.Sinks[0].Written);
    }

    [Fact]
    public async Task Metrics_ArriveAtTheCollector_ByOutcomeAndReason_WithLagAndSpoolSize()
    {
        await using var receiver = new OtlpReceiver();
        using var temp = new TempDirectory();
        var pipeline = Events.Pipeline(temp.Combine("spool"), new CollectingSink());
        await pipeline.StartAsync(Ct);
        for (var i = 0; i < 10; i++)
        {
            pipeline.Post(Events.Make(i));
        }

        await Eventually.Until(() => pipeline.Counters.ByOutcomeAndReason().Sum(c => c.Count) == 10, "10 decisions counted");
        var services = new ServiceCollection().AddSingleton(pipeline)
            .AddDecisionMetricsExport(new OtlpOptions { Endpoint = receiver.Endpoint, MetricsInterval = TimeSpan.FromHours(1) }, "node-1");
        await using (var provider = services.BuildServiceProvider())
        {
            Assert.True(provider.GetRequiredService<MeterProvider>().ForceFlush(5000));
        }

        await pipeline.StopAsync(Ct);

        var points = receiver.MetricPoints.ToList();
        var decisions = points.Where(p => p.Name == "ktzt.decisions").ToList();
        Assert.Equal(5, decisions.Single(p => (string)p.Attributes["outcome"] == "deny" && (string)p.Attributes["reason"] == "device_revoked").Value);
        Assert.Equal(5, decisions.Single(p => (string)p.Attributes["outcome"] == "allow").Value);
        Assert.Contains(points, p => p.Name == "ktzt.pipeline.lag");
        Assert.Contains(points, p => p.Name == "ktzt.sink.spool.size" && (string)p.Attributes["sink"] == "collect");
        Assert.Equal(10, points.Single(p => p.Name == "ktzt.decision.latency.count").Value);
    }
}

/// <summary>Keeps what it is given.</summary>
internal sealed class CollectingSink(string name = "collect") : IDecisionExportSink
{
    public System.Collections.Concurrent.ConcurrentQueue<DecisionEvent> Events { get; } = new();

    public string Name => name;

    public Task WriteBatchAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken)
    {
        foreach (var e in batch)
        {
            Events.Enqueue(e.Event);
        }

        return Task.CompletedTask;
    }
}
