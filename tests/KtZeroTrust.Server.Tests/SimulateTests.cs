using System.Text.Json;
using KtZeroTrust.Cli.Commands;

namespace KtZeroTrust.Server.Tests;

/// <summary><c>ztctl simulate</c> against the real server: honest units enroll and pass the gateway; each attack is refused with its reason.</summary>
public sealed class SimulateTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Simulate_HonestFleetEnrolls_AndEveryRogueScenarioIsRefusedWithItsReason()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        string[] scenarios = ["shared-key", "decommissioned", "moved", "bad-firmware", "replayed-nonce", "unknown-serial", "cloned-certificate"];
        var code = await Ztctl.RunAsync(
        [
            "simulate", "--units", "6", "--rounds", "2", "--concurrency", "4",
            "--enroll-url", $"https://127.0.0.1:{server.EnrollmentPort}", "--gateway-url", $"https://127.0.0.1:{server.DevicePort}",
            "--rogue", .. scenarios,
            "--data-dir", server.DataDirectory, "--pki-dir", server.Layout.Directory, "--json",
        ], output, error, TestContext.Current.CancellationToken);

        Assert.True(code == 0, $"exit {code}: {output} {error}");
        var report = JsonDocument.Parse(output.ToString()).RootElement;
        var honest = report.GetProperty("honest");
        Assert.Equal((12, 0, 12), (honest.GetProperty("enrolled").GetInt32(), honest.GetProperty("failed").GetInt32(), honest.GetProperty("gatewayOk").GetInt32()));
        var rogue = report.GetProperty("rogue");
        foreach (var result in rogue.EnumerateArray())
        {
            Assert.True(result.GetProperty("refused").GetBoolean(), result.ToString());
        }

        Assert.Equal(scenarios.Length, rogue.GetArrayLength());

        // Each refusal is in the decision log with its own reason code.
        foreach (var reason in new[] { "key_shared", "device_decommissioned", "location_outside_site", "firmware_unknown", "nonce_invalid", "device_unknown", "clone_suspected" })
        {
            await server.DecisionAsync(d => d.Text("reason") == reason && d.Text("outcome") == "deny", reason);
        }
    }

    [Fact]
    public async Task Simulate_ProtocolBoth_EnrollsHalfTheFleetOverCmp_InTheSameRun()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await Ztctl.RunAsync(
        [
            "simulate", "--units", "4", "--rounds", "2", "--concurrency", "4", "--protocol", "both",
            "--enroll-url", $"https://127.0.0.1:{server.EnrollmentPort}", "--gateway-url", $"https://127.0.0.1:{server.DevicePort}",
            "--data-dir", server.DataDirectory, "--pki-dir", server.Layout.Directory, "--json",
        ], output, error, TestContext.Current.CancellationToken);

        Assert.True(code == 0, $"exit {code}: {output} {error}");
        var honest = JsonDocument.Parse(output.ToString()).RootElement.GetProperty("honest");
        Assert.Equal((8, 0, 8), (honest.GetProperty("enrolled").GetInt32(), honest.GetProperty("failed").GetInt32(), honest.GetProperty("gatewayOk").GetInt32()));
        Assert.Equal((4, 4), (honest.GetProperty("est").GetProperty("enrolled").GetInt32(), honest.GetProperty("cmp").GetProperty("enrolled").GetInt32()));

        // The CMP half went through ir and certConf for real: each unit's second round superseded its first certificate.
        var confirmed = (await server.DecisionsAsync()).Count(d => d.Text("route") == "cmp:certConf" && d.Text("reason") == "allowed" && d.Text("subject")!.StartsWith("SIM-", StringComparison.Ordinal));
        Assert.Equal(4, confirmed);
    }

    [Fact]
    public async Task Simulate_Renew_UnitsRenewAtTheirCertificatesHints_SpreadOverTheWindow_OverEstAndCmp()
    {
        await using var shortLived = new ServerFixture(null, null, ["--ZeroTrust:Attestation:CertificateLifetime=00:00:12"]);
        await shortLived.InitializeAsync();
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await Ztctl.RunAsync(
        [
            "simulate", "--units", "6", "--concurrency", "6", "--protocol", "both", "--renew",
            "--enroll-url", $"https://127.0.0.1:{shortLived.EnrollmentPort}", "--gateway-url", $"https://127.0.0.1:{shortLived.DevicePort}",
            "--data-dir", shortLived.DataDirectory, "--pki-dir", shortLived.Layout.Directory, "--json",
        ], output, error, TestContext.Current.CancellationToken);

        Assert.True(code == 0, $"exit {code}: {output} {error}");
        var renewals = JsonDocument.Parse(output.ToString()).RootElement.GetProperty("honest").GetProperty("renewals");
        Assert.Equal((6, 0, 6), (renewals.GetProperty("renewed").GetInt32(), renewals.GetProperty("failed").GetInt32(), renewals.GetProperty("gatewayOk").GetInt32()));
        var (earliest, latest) = (renewals.GetProperty("earliestFraction").GetDouble(), renewals.GetProperty("latestFraction").GetDouble());
        Assert.InRange(earliest, 0.45, 0.8); // 0.5 of the time from receipt, less the milliseconds between issue and receipt
        Assert.InRange(latest, earliest, 0.8);
        Assert.True(latest > earliest, "six units enrolled together renew at different points");
        Assert.Equal(6, renewals.GetProperty("byTenth").EnumerateArray().Skip(4).Take(4).Sum(e => e.GetInt32()));

        // Each renewal went through for real: EST simplereenroll and CMP kur, each unit's first certificate superseded.
        var decisions = await shortLived.DecisionsAsync();
        Assert.Equal(3, decisions.Count(d => d.Text("route") == "est-simplereenroll" && d.Text("reason") == "allowed"));
        Assert.Equal(3, decisions.Count(d => d.Text("route") == "cmp:kur" && d.Text("reason") == "allowed"));
    }

    [Fact]
    public async Task DecisionsTail_ShowsARogueUnitsDenialLive_WhileTheSimulatorRuns()
    {
        var ct = TestContext.Current.CancellationToken;
        using var tailOutput = new StringWriter();
        using var tailError = new StringWriter();
        // Filtered on the rogue's reason: the honest unit's re-enrollment may refuse its previous certificate first.
        var tail = Ztctl.RunAsync(["decisions", "tail", "--outcome", "deny", "--reason", "device_unknown", "--max", "1", "--for", "00:01:00", "--json", "--data-dir", server.DataDirectory], tailOutput, tailError, ct);

        using var output = new StringWriter();
        using var error = new StringWriter();
        // The simulator runs until tail has shown a denial (a round per pass), bounded.
        for (var round = 0; round < 10 && !tail.IsCompleted; round++)
        {
            await Ztctl.RunAsync(
            [
                "simulate", "--units", "1", "--rounds", "1",
                "--enroll-url", $"https://127.0.0.1:{server.EnrollmentPort}", "--gateway-url", $"https://127.0.0.1:{server.DevicePort}",
                "--rogue", "unknown-serial", "--data-dir", server.DataDirectory, "--pki-dir", server.Layout.Directory, "--json",
            ], output, error, ct);
        }

        Assert.Equal(0, await tail);
        var shown = JsonDocument.Parse(tailOutput.ToString().Trim()).RootElement;
        Assert.Equal(("deny", "device_unknown"), (shown.Text("outcome"), shown.Text("reason")));
        Assert.StartsWith("UNREG-", shown.Text("subject"), StringComparison.Ordinal); // the simulator's unregistered rogue unit
    }
}
