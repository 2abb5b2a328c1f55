using System.Text;
using System.Text.Json;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.SocConsole.Decisions;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Console.Tests;

public sealed class ConsoleDecisionsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 10, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static DecisionEvent Make(int i, string subject) => new()
    {
        Id = $"ID{i:D24}", Time = T0.AddMinutes(i), Listener = DecisionListener.Device, Subject = subject, SourceAddress = "10.0.0.1", SourcePort = 40000 + i,
        Route = "femto-management", Outcome = DecisionOutcome.Allow, Reason = ReasonCode.Allowed, CertificateHash = new string('b', 64), PolicyVersion = "pv1", Node = "gw-1",
    };

    [Fact]
    public async Task Latest_ReadsNewestFirst_StopsAtTheLimit_AndSkipsRolledFilesThatEndBeforeTheRange()
    {
        using var temp = new TempDirectory();
        var log = temp.Combine("decisions.jsonl");
        // An older rolled file (rolled at T0+5 min), then the current file.
        await File.WriteAllLinesAsync(temp.Combine("decisions-20261201T100500000.jsonl"), Enumerable.Range(0, 5).Select(i => Line(Make(i, i % 2 == 0 ? "FC-1" : "FC-2"))), Ct);
        await File.WriteAllLinesAsync(log, Enumerable.Range(5, 5).Select(i => Line(Make(i, i % 2 == 0 ? "FC-1" : "FC-2"))), Ct);
        var decisions = new ConsoleDecisions(log);

        var latest = await decisions.LatestAsync(e => e.Subject == "FC-1", 3, Ct);
        Assert.Equal(["ID000000000000000000000008", "ID000000000000000000000006", "ID000000000000000000000004"], latest.Select(e => e.Event.Id));

        // A damaged rolled file that ends before the range is never opened: the range starts after it was rolled.
        await File.WriteAllTextAsync(temp.Combine("decisions-20261201T100500000.jsonl"), "{not json\n", Ct);
        var recent = await decisions.LatestAsync(_ => true, 100, Ct, since: T0.AddMinutes(6));
        Assert.Equal([9, 8, 7, 6], recent.Select(e => (int)(e.Event.Time - T0).TotalMinutes));

        var range = await decisions.LatestAsync(_ => true, 100, Ct, since: T0.AddMinutes(6), until: T0.AddMinutes(8));
        Assert.Equal([8, 7, 6], range.Select(e => (int)(e.Event.Time - T0).TotalMinutes));
    }

    [Fact]
    public void RawJson_IsTheStoredDecisionWithEveryField_AndTheAcknowledgementAppended()
    {
        var stored = JournaledDecision.Of(Make(1, "FC-1"));
        var plain = JsonSerializer.Serialize(new { decisions = new[] { RawDecisionJson.Of(stored) } });
        Assert.Contains(Encoding.UTF8.GetString(stored.Json.Span), plain, StringComparison.Ordinal); // the bytes as stored

        var acked = JsonDocument.Parse(JsonSerializer.Serialize(RawDecisionJson.WithAcknowledgement(stored, "analyst-\"1\"", T0))).RootElement;
        Assert.Equal("analyst-\"1\"", acked.GetProperty("acknowledgedBy").GetString());
        Assert.Equal(T0, acked.GetProperty("acknowledgedAt").GetDateTimeOffset());
        Assert.Equal(new string('b', 64), acked.GetProperty("certificateSha256").GetString());
        Assert.Equal(40001, acked.GetProperty("sourcePort").GetInt32());
        Assert.Equal("pv1", acked.GetProperty("policyVersion").GetString());

        var unacked = JsonDocument.Parse(JsonSerializer.Serialize(RawDecisionJson.WithAcknowledgement(stored, null, null))).RootElement;
        Assert.Equal(JsonValueKind.Null, unacked.GetProperty("acknowledgedBy").ValueKind);
    }

    [Fact]
    public async Task Feed_KeepsTheLastSightingAndTheDenyReasons_FromTheBatchesItIsGiven()
    {
        var feed = new ConsoleFeed(TimeProvider.System);
        using var subscription = feed.Subscribe();
        var denied = Make(2, "FC-9") with { Outcome = DecisionOutcome.Deny, Reason = ReasonCode.DeviceRevoked, Time = DateTimeOffset.UtcNow };
        await feed.WriteBatchAsync([JournaledDecision.Of(Make(1, "FC-8")), JournaledDecision.Of(denied)], Ct);

        Assert.Equal("10.0.0.1", feed.LastSeen("FC-8")?.Address);
        Assert.Null(feed.LastSeen("FC-9")); // a denial is no sighting
        Assert.Contains(("device_revoked", 1L), feed.Summary().TopDenyReasons);
        Assert.True(subscription.Reader.TryRead(out var first));
        Assert.Equal("FC-8", first.Event.Subject);
    }

    private static string Line(DecisionEvent e) => Encoding.UTF8.GetString(JournaledDecision.Of(e).Json.Span);

    [Fact]
    public void StreamKey_DefaultsToTheSinksDefault() => Assert.Equal(RedisStreamSink.DefaultStreamKey, new DecisionStreamOptions().StreamKey);
}

public sealed class DecisionCsvTests
{
    [Fact]
    public void Fields_AreQuoted_AndFormulasDefused()
    {
        var e = new DecisionEvent
        {
            Id = "ID1", Time = new DateTimeOffset(2026, 12, 2, 1, 2, 3, TimeSpan.Zero), Listener = DecisionListener.Console, Subject = "=HYPERLINK(\"http://x\")",
            Outcome = DecisionOutcome.Deny, Reason = ReasonCode.CredentialsInvalid, Path = "/a,b", Detail = "line one\nline \"two\"",
        };
        var lines = KtZeroTrust.SocConsole.Decisions.DecisionCsv.Write([e]).Split("\r\n");
        Assert.Equal(3, lines.Length); // header, the row (its line break inside quotes), the final empty
        Assert.Equal("2026-12-02T01:02:03.000000Z,ID1,access,console,\"'=HYPERLINK(\"\"http://x\"\")\",,,,\"/a,b\",,deny,credentials_invalid,,0,,,\"line one\nline \"\"two\"\"\"", lines[1]);
    }
}
