using System.Net;
using KtZeroTrust.Cli.Commands;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Monitoring.Otlp;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.DependencyInjection;

namespace KtZeroTrust.Server.Tests;

/// <summary>A server exporting to a stand-in OTLP collector, with a low denial-burst threshold.</summary>
public sealed class OtlpServerFixture : ServerFixture
{
    public OtlpServerFixture()
        : this(new OtlpReceiver())
    {
    }

    private OtlpServerFixture(OtlpReceiver receiver)
        : base(null, null, [$"--ZeroTrust:DecisionStream:Otlp:Endpoint={receiver.Endpoint}", "--ZeroTrust:Detectors:DenialBurst:Threshold=10"])
        => Receiver = receiver;

    public OtlpReceiver Receiver { get; }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await Receiver.DisposeAsync();
    }
}

/// <summary>The server's decision stream end to end: OTLP logs and metrics, detectors on the embedded pipeline.</summary>
public sealed class DecisionStreamTests(OtlpServerFixture server) : IClassFixture<OtlpServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task DeviceRequests_ReachTheOtlpCollector_AsLogRecordsAndMetrics()
    {
        using var client = server.DeviceClient(server.SampleCertificate("FC-0001"));
        using (var response = await client.GetAsync(server.DeviceUri("/femto/status"), Ct))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var record = await Eventually.Until(() => Task.FromResult(server.Receiver.Logs.FirstOrDefault(l => l.Attributes.TryGetValue("zt.subject", out var s) && (string)s == "FC-0001" && (string)l.Attributes["zt.outcome"] == "allow")),
            r => r is not null, "FC-0001's allowed request at the collector");
        Assert.Equal("/femto/status", record!.Attributes["url.path"]);
        Assert.Equal("GET", record.Attributes["http.request.method"]);
        Assert.Equal(Environment.MachineName, record.Attributes["zt.node"]);

        Assert.True(OpenTelemetry.Metrics.MeterProviderExtensions.ForceFlush(server.Services.GetRequiredService<OpenTelemetry.Metrics.MeterProvider>(), 5000));
        Assert.Contains(server.Receiver.MetricPoints, p => p.Name == "ktzt.decisions" && (string)p.Attributes["outcome"] == "allow" && (string)p.Attributes["reason"] == "allowed" && p.Value >= 1);
    }

    [Fact]
    public async Task BurstOfDenials_FromOneSource_IsAnAlertInTheLogAndAtTheCollector()
    {
        await server.TransitionAsync("FC-0005", DeviceLifecycleState.Suspended, "test: burst");
        using var client = server.DeviceClient(server.SampleCertificate("FC-0005"));
        // The gateway learns of the suspension within its poll interval (cutting any connection it had open).
        await Eventually.Until(async () =>
        {
            using var response = await client.GetAsync(server.DeviceUri("/femto/status"), Ct);
            return response.StatusCode;
        }, status => status == HttpStatusCode.Forbidden, "the suspension to apply");
        for (var i = 0; i < 12; i++)
        {
            using var response = await client.GetAsync(server.DeviceUri("/femto/status"), Ct);
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        }

        var alert = await server.DecisionAsync(d => d.Text("reason") == "denial_burst" && d.Text("kind") == "alert", "the denial burst alert");
        Assert.Equal(("detector:denial-burst", "127.0.0.1"), (alert.Text("route"), alert.Text("sourceAddress")));
        await Eventually.Until(() => Task.FromResult(server.Receiver.Logs.Any(l => (string)l.Attributes["zt.reason"] == "denial_burst" && l.SeverityNumber == 17)), ok => ok, "the alert at the collector as ERROR");
    }

    [Fact]
    public async Task DecisionsExport_WritesTheServersDecisionsAsOcsf()
    {
        using var client = server.DeviceClient(server.SampleCertificate("FC-0002"));
        using (await client.GetAsync(server.DeviceUri("/femto/status"), Ct))
        {
        }

        await server.DecisionAsync(d => d.Text("subject") == "FC-0002", "FC-0002's decision in the log");
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await Ztctl.RunAsync(["decisions", "export", "--device", "FC-0002", "--data-dir", server.DataDirectory], output, error, Ct);
        Assert.True(code == 0, error.ToString());
        var first = System.Text.Json.JsonDocument.Parse(output.ToString().Split('\n')[0]).RootElement;
        Assert.Equal((4002, "FC-0002"), (first.GetProperty("class_uid").GetInt32(), first.GetProperty("device").GetProperty("uid").GetString()));
    }
}
