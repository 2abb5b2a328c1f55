using System.Text.Json;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Ocsf;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Monitoring.Tests;

public sealed class OcsfTests
{
    private static JsonElement Ocsf(DecisionEvent e) => JsonDocument.Parse(OcsfJson.ToUtf8(e)).RootElement;

    [Fact]
    public void DeviceRequest_IsHttpActivity_WithRequestSourceDeviceAndStatus()
    {
        var o = Ocsf(Events.Make(1));
        Assert.Equal((4002, 4, 3, 400203L), (o.GetProperty("class_uid").GetInt32(), o.GetProperty("category_uid").GetInt32(), o.GetProperty("activity_id").GetInt32(), o.GetProperty("type_uid").GetInt64()));
        Assert.Equal(("Failure", "device_revoked", 2), (o.GetProperty("status").GetString(), o.GetProperty("status_code").GetString(), o.GetProperty("action_id").GetInt32()));
        Assert.Equal(Events.Make(1).Time.ToUnixTimeMilliseconds(), o.GetProperty("time").GetInt64());
        Assert.Equal("GET", o.GetProperty("http_request").GetProperty("http_method").GetString());
        Assert.Equal("/femto/\"quoted\"", o.GetProperty("http_request").GetProperty("url").GetProperty("path").GetString());
        Assert.Equal(("127.0.0.1", 40001), (o.GetProperty("src_endpoint").GetProperty("ip").GetString(), o.GetProperty("src_endpoint").GetProperty("port").GetInt32()));
        Assert.Equal("FC-0001", o.GetProperty("device").GetProperty("uid").GetString());
        Assert.Equal(Events.Make(1).Id, o.GetProperty("metadata").GetProperty("uid").GetString());
        Assert.Equal(new string('a', 64), o.GetProperty("unmapped").GetProperty("certificate_sha256").GetString());
    }

    [Theory]
    [InlineData(DecisionKind.Access, "tls-handshake", null, 3002, 1)]
    [InlineData(DecisionKind.Access, "connection-abort", null, 3002, 2)]
    [InlineData(DecisionKind.Enrollment, "est-simpleenroll", "POST", 3002, 99)]
    [InlineData(DecisionKind.Attestation, "attestation", "POST", 3002, 99)]
    [InlineData(DecisionKind.Alert, "detector:clone", null, 2004, 1)]
    [InlineData(DecisionKind.Lifecycle, "lifecycle", null, 3004, 3)]
    [InlineData(DecisionKind.Admin, "admin:revoke", null, 3004, 3)]
    [InlineData(DecisionKind.System, "allow-list", null, 6002, 99)]
    [InlineData(DecisionKind.Access, "r", "PATCH", 4002, 99)]
    public void EveryKind_MapsToItsOcsfClass(DecisionKind kind, string route, string? method, int classUid, int activityId)
    {
        var o = Ocsf(new DecisionEvent { Id = "X", Time = DateTimeOffset.UnixEpoch, Kind = kind, Listener = DecisionListener.Device, Subject = "FC-1", Route = route, Method = method, Outcome = DecisionOutcome.Deny, Reason = ReasonCode.CloneSuspected });
        Assert.Equal((classUid, activityId), (o.GetProperty("class_uid").GetInt32(), o.GetProperty("activity_id").GetInt32()));
        Assert.Equal((classUid * 100L) + activityId, o.GetProperty("type_uid").GetInt64());
        if (classUid == 3002)
        {
            Assert.Equal("FC-1", o.GetProperty("user").GetProperty("uid").GetString()); // Authentication requires a user
        }

        if (classUid == 2004)
        {
            Assert.Equal("clone_suspected", o.GetProperty("finding_info").GetProperty("types")[0].GetString());
        }
    }

    [Fact]
    public void NewFields_RoundTripThroughTheLogForm()
    {
        var e = new DecisionEvent { Id = "X", Time = DateTimeOffset.UnixEpoch, Listener = DecisionListener.User, Subject = "alice", Outcome = DecisionOutcome.Allow, Reason = ReasonCode.Allowed, Node = "gw-2", PolicyVersion = "abc123", Detail = "why" };
        var back = DecisionJson.Read(DecisionJson.ToUtf8(e));
        Assert.Equal(("gw-2", "abc123", "why"), (back.Node, back.PolicyVersion, back.Detail));
        Assert.Equal("alice", Ocsf(e).GetProperty("user").GetProperty("uid").GetString());
    }
}

public sealed class PipelineMetricsAndAlertsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task PrometheusText_CountsByOutcomeAndReason_AndHasTheLatencyHistogram()
    {
        using var temp = new TempDirectory();
        var sink = new CollectingSink();
        var pipeline = Events.Pipeline(temp.Combine("spool"), sink);
        await pipeline.StartAsync(Ct);
        for (var i = 0; i < 10; i++)
        {
            pipeline.Post(Events.Make(i));
        }

        await Eventually.Until(() => sink.Events.Count == 10, "10 decisions written");
        var text = PipelineMetrics.Render(pipeline);
        await pipeline.StopAsync(Ct);

        Assert.Contains("ktzt_decisions_total{outcome=\"deny\",reason=\"device_revoked\"} 5\n", text, StringComparison.Ordinal);
        Assert.Contains("ktzt_decisions_total{outcome=\"allow\",reason=\"allowed\"} 5\n", text, StringComparison.Ordinal);
        Assert.Contains("ktzt_decision_latency_seconds_bucket{le=\"1E-05\"} 0\n", text, StringComparison.Ordinal); // 12.3 us is above 10 us
        Assert.Contains("ktzt_decision_latency_seconds_bucket{le=\"2.5E-05\"} 10\n", text, StringComparison.Ordinal);
        Assert.Contains("ktzt_decision_latency_seconds_bucket{le=\"+Inf\"} 10\n", text, StringComparison.Ordinal);
        Assert.Contains("ktzt_decision_latency_seconds_count 10\n", text, StringComparison.Ordinal);
        Assert.Contains("ktzt_pipeline_lag_seconds 0\n", text, StringComparison.Ordinal);
        Assert.All(sink.Events, e => Assert.Equal(pipeline.Node, e.Node));
    }

    [Fact]
    public async Task FailingSink_SpoolGrowth_IsAnAlertInTheStream_ThatOtherSinksDeliver()
    {
        using var temp = new TempDirectory();
        var healthy = new CollectingSink("healthy");
        var failing = new FailingSink();
        var pipeline = new DecisionPipeline([healthy, failing],
            new DecisionPipelineOptions { SpoolDirectory = temp.Combine("spool"), RetryDelay = TimeSpan.FromMilliseconds(20), SinkQueueCapacity = 100, SpoolAlertBytes = 10_000 },
            Microsoft.Extensions.Logging.Abstractions.NullLogger<DecisionPipeline>.Instance);
        await pipeline.StartAsync(Ct);
        for (var i = 0; i < 500; i++)
        {
            pipeline.Post(Events.Make(i));
            if (i % 50 == 0)
            {
                // Let the dispatcher take a batch at a time, so the spool grows across several dispatches.
                var posted = i + 1;
                await Eventually.Until(() => healthy.Events.Count(e => e.Kind == DecisionKind.Access) >= posted, "the batch dispatched");
            }
        }

        await Eventually.Until(() => healthy.Events.Any(e => e.Reason == ReasonCode.DecisionSpoolGrowing), "a spool growth alert");
        await pipeline.StopAsync(Ct);

        var alert = healthy.Events.First(e => e.Reason == ReasonCode.DecisionSpoolGrowing);
        Assert.Equal((DecisionKind.Alert, "pipeline:failing"), (alert.Kind, alert.Route));
        Assert.Contains("failing", alert.Detail, StringComparison.Ordinal);
        Assert.True(pipeline.Sinks.Single(s => s.Name == "failing").SpoolBytes > 10_000);
    }

    private sealed class FailingSink : IDecisionExportSink
    {
        public string Name => "failing";

        public Task WriteBatchAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken) => throw new IOException("down");
    }
}
