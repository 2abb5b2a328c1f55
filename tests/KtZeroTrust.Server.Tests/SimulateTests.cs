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
}
