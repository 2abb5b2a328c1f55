using System.Text.Json;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.Logging.Abstractions;

namespace KtZeroTrust.Monitoring.Tests;

public sealed class JsonLinesDecisionLogTests
{
    private static DecisionEvent Event(int i) => new()
    {
        Id = $"ID{i:D24}",
        Time = new DateTimeOffset(2026, 11, 22, 1, 2, 3, TimeSpan.Zero),
        Listener = "device",
        Subject = "FC-0001",
        SourceAddress = "127.0.0.1",
        SourcePort = 40000 + i,
        Method = "GET",
        Path = "/femto/\"quoted\"",
        Route = "r",
        Outcome = i % 2 == 0 ? DecisionOutcome.Allow : DecisionOutcome.Deny,
        Reason = i % 2 == 0 ? ReasonCode.Allowed : ReasonCode.DeviceRevoked,
        CertificateHash = new string('a', 64),
        LatencyMicroseconds = 12.34,
    };

    [Fact]
    public async Task Posted_Decisions_AreWrittenOnePerLine_AndAllFlushedOnStop()
    {
        using var temp = new TempDirectory();
        var log = new JsonLinesDecisionLog(temp.Combine("sub", "decisions.jsonl"), NullLogger<JsonLinesDecisionLog>.Instance);
        await log.StartAsync(TestContext.Current.CancellationToken);

        for (var i = 0; i < 5000; i++)
        {
            log.Post(Event(i));
        }

        await log.StopAsync(TestContext.Current.CancellationToken);

        var lines = await File.ReadAllLinesAsync(log.FilePath, TestContext.Current.CancellationToken);
        Assert.Equal(5000, lines.Length);
        var first = JsonDocument.Parse(lines[1]).RootElement;
        Assert.Equal("ID000000000000000000000001", first.GetProperty("id").GetString());
        Assert.Equal("deny", first.GetProperty("outcome").GetString());
        Assert.Equal("device_revoked", first.GetProperty("reason").GetString());
        Assert.Equal("/femto/\"quoted\"", first.GetProperty("path").GetString());
        Assert.Equal("2026-11-22T01:02:03Z", first.GetProperty("time").GetString());
        Assert.Equal(40001, first.GetProperty("sourcePort").GetInt32());
        Assert.Equal(5000, lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()).Distinct().Count());
    }
}
