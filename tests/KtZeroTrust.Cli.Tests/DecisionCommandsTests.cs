using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Pipeline;
using System.Text.Json;
using StackExchange.Redis;
using KtZeroTrust.Cli.Commands;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Redis;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Cli.Tests;

/// <summary><c>ztctl decisions</c> over the real JSON-lines sink and a real Redis Stream.</summary>
public sealed class DecisionCommandsTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>, IDisposable
{
    private readonly TempDirectory _temp = new("ztctl-decisions");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JournaledDecision Event(int i, string subject, ReasonCode reason) => JournaledDecision.Of(new DecisionEvent
    {
        Id = $"ID{i:D24}",
        Time = new DateTimeOffset(2026, 11, 22, 1, 0, 0, TimeSpan.Zero).AddMinutes(i),
        Listener = DecisionListener.Device,
        Subject = subject,
        SourceAddress = "127.0.0.1",
        Route = "femto-management",
        Outcome = reason == ReasonCode.Allowed ? DecisionOutcome.Allow : DecisionOutcome.Deny,
        Reason = reason,
    });

    private async Task<(int Code, string Out)> Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await Ztctl.RunAsync([.. args, "--data-dir", _temp.Combine("data")], output, error, Ct);
        return (code, output + error.ToString());
    }

    [Fact]
    public async Task ExportFollow_WithRedisUnreachable_SaysSo_Exits2_AndLeavesNoFile()
    {
        var port = FreePorts.Next(); // nothing listens there
        var file = _temp.Combine("export.jsonl");

        var (code, text) = await Run("--redis", $"127.0.0.1:{port}", "decisions", "export", "--group", "siem", "--follow", "--out", file);

        Assert.Equal(2, code);
        Assert.Contains("cannot reach the server", text, StringComparison.Ordinal);
        Assert.False(File.Exists(file), "an empty export file was left behind");
    }

    [Fact]
    public async Task Tail_SaysItIsWaiting_AndWhenTheServerIsUnreachable()
    {
        var waiting = await Run("decisions", "tail", "--for", "00:00:00.300");
        Assert.Equal(0, waiting.Code);
        Assert.Contains("Waiting for decisions", waiting.Out, StringComparison.Ordinal);

        var unreachable = await Run("--redis", $"127.0.0.1:{FreePorts.Next()}", "decisions", "tail", "--for", "00:00:05");
        Assert.Equal(2, unreachable.Code);
        Assert.Contains("cannot reach the server", unreachable.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Search_FiltersTheLocalLog_ByOutcomeDeviceReasonAndTime()
    {
        var sink = new JsonLinesFileSink(_temp.Combine("data", "decisions.jsonl"));
        await sink.WriteBatchAsync([Event(1, "FC-1", ReasonCode.Allowed), Event(2, "FC-2", ReasonCode.DeviceRevoked), Event(3, "FC-2", ReasonCode.CloneSuspected), Event(4, "FC-3", ReasonCode.DeviceRevoked)], Ct);

        var denies = await Run("decisions", "search", "--outcome", "deny", "--device", "FC-2", "--json");
        Assert.Equal(0, denies.Code);
        var ids = denies.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()).ToList();
        Assert.Equal(["ID000000000000000000000002", "ID000000000000000000000003"], ids);

        var table = await Run("decisions", "search", "--reason", "device_revoked", "--since", "2026-11-22T01:03:00Z");
        Assert.Contains("FC-3", table.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("FC-2", table.Out, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.NotFound, (await Run("decisions", "search", "--device", "FC-9")).Code);
        Assert.Equal(ExitCodes.Usage, (await Run("decisions", "search", "--outcome", "maybe")).Code);
    }

    [Fact]
    public async Task Export_WritesOcsfLines_FromTheLocalLog_WithTheFilters()
    {
        var sink = new JsonLinesFileSink(_temp.Combine("data", "decisions.jsonl"));
        await sink.WriteBatchAsync([Event(1, "FC-1", ReasonCode.Allowed), Event(2, "FC-2", ReasonCode.DeviceRevoked), Event(3, "FC-3", ReasonCode.DeviceRevoked)], Ct);

        var result = await Run("decisions", "export", "--outcome", "deny", "--until", "2026-11-22T01:02:30Z");
        Assert.Equal(0, result.Code);
        var line = Assert.Single(result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var ocsf = JsonDocument.Parse(line).RootElement;
        Assert.Equal(("FC-2", "device_revoked", "ID000000000000000000000002"), (ocsf.GetProperty("device").GetProperty("uid").GetString(), ocsf.GetProperty("status_code").GetString(), ocsf.GetProperty("metadata").GetProperty("uid").GetString()));

        var file = _temp.Combine("export.ocsf.jsonl");
        Assert.Equal(0, (await Run("decisions", "export", "--out", file)).Code);
        Assert.Equal(3, (await File.ReadAllLinesAsync(file, Ct)).Length);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)] // several decisions per stream entry (ZeroTrust:DecisionStream:EventsPerEntry)
    public async Task Export_AsAConsumerGroup_ResumesWhereItStopped_AndNeverRepeatsAcknowledgedEntries(int eventsPerEntry)
    {
        var stream = "zt:decisions:" + Guid.NewGuid().ToString("N");
        await using var client = new RedisConnection(redis.Configuration);
        var redisSink = new RedisStreamSink(client, stream, eventsPerEntry: eventsPerEntry);
        await redisSink.WriteBatchAsync([Event(1, "FC-1", ReasonCode.Allowed), Event(2, "FC-2", ReasonCode.DeviceRevoked)], Ct);
        var file = _temp.Combine("siem.jsonl");
        string[] Args() => ["decisions", "export", "--redis", redis.Configuration, "--stream", stream, "--group", "siem", "--consumer", "exporter-1", "--out", file];

        Assert.Equal(0, (await Run(Args())).Code);
        await redisSink.WriteBatchAsync([Event(3, "FC-3", ReasonCode.CloneSuspected)], Ct);
        Assert.Equal(0, (await Run(Args())).Code);
        Assert.Equal(0, (await Run(Args())).Code); // nothing new: nothing written

        var uids = (await File.ReadAllLinesAsync(file, Ct)).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("metadata").GetProperty("uid").GetString()).ToList();
        Assert.Equal(["ID000000000000000000000001", "ID000000000000000000000002", "ID000000000000000000000003"], uids);
        var pending = await (await client.DatabaseAsync()).StreamPendingAsync(stream, "siem");
        Assert.Equal(0, pending.PendingMessageCount); // every entry acknowledged
        Assert.Equal(ExitCodes.Usage, (await Run("decisions", "export", "--group", "siem")).Code); // a group needs Redis
    }

    [Fact]
    public async Task Tail_ShowsNewDecisionsLive_FromTheFileAndFromTheRedisStream()
    {
        var sink = new JsonLinesFileSink(_temp.Combine("data", "decisions.jsonl"));
        await sink.WriteBatchAsync([Event(1, "OLD", ReasonCode.DeviceRevoked)], Ct);
        var tail = Run("decisions", "tail", "--outcome", "deny", "--max", "1", "--for", "00:00:30", "--json");
        // tail shows only what is written after it started; keep writing until it has shown one.
        for (var i = 2; !tail.IsCompleted; i += 2)
        {
            await sink.WriteBatchAsync([Event(i, "FC-A", ReasonCode.Allowed), Event(i + 1, "FC-B", ReasonCode.DeviceSuspended)], Ct);
            await Task.WhenAny(tail, Task.Delay(100, Ct));
        }

        var fromFile = await tail;
        Assert.Equal("FC-B", JsonDocument.Parse(fromFile.Out.Split('\n')[0].Trim()).RootElement.GetProperty("subject").GetString());

        var stream = "zt:decisions:" + Guid.NewGuid().ToString("N");
        await using var client = new RedisConnection(redis.Configuration);
        var redisSink = new RedisStreamSink(client, stream);
        await redisSink.WriteBatchAsync([Event(4, "BEFORE", ReasonCode.DeviceRevoked)], Ct);
        var live = Run("decisions", "tail", "--redis", redis.Configuration, "--stream", stream, "--reason", "clone_suspected", "--max", "1", "--for", "00:00:30", "--json");
        var written = 1;
        for (var i = 5; !live.IsCompleted; i += 2)
        {
            await redisSink.WriteBatchAsync([Event(i, "FC-C", ReasonCode.DeviceRevoked), Event(i + 1, "FC-D", ReasonCode.CloneSuspected)], Ct);
            written += 2;
            await Task.WhenAny(live, Task.Delay(100, Ct));
        }

        var fromRedis = await live;
        Assert.Equal("FC-D", JsonDocument.Parse(fromRedis.Out.Split('\n')[0].Trim()).RootElement.GetProperty("subject").GetString());

        var all = await Run("decisions", "search", "--redis", redis.Configuration, "--stream", stream, "--json");
        Assert.Equal(written, all.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    public void Dispose() => _temp.Dispose();
}
