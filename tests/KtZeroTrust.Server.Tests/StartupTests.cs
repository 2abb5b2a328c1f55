using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Server.Pki;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

public sealed class StartupTests
{
    [Theory]
    [InlineData(true, false, false, null, true)] // a gateway-only node: nothing on its paths blocks a thread
    [InlineData(true, true, true, null, false)] // the embedded all-roles process: enrollment and console use SQLite
    [InlineData(true, false, true, null, false)]
    [InlineData(false, true, false, null, false)]
    [InlineData(true, true, true, true, true)] // an explicit setting wins
    [InlineData(true, false, false, false, false)]
    public void InlineScheduling_DefaultsOnOnlyForAGatewayOnlyNode(bool gateway, bool attestation, bool console, bool? configured, bool expected)
    {
        var transport = new TransportOptions { InlineScheduling = configured };

        Assert.Equal(expected, transport.InlineSchedulingFor(new RoleOptions { Gateway = gateway, Attestation = attestation, Console = console }));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1001")]
    public void Start_WithDecisionsPerStreamEntryOutOfRange_SaysSo(string value)
    {
        using var temp = new TempDirectory();
        var args = ServerFixture.Arguments(temp.Combine("pki"), temp.Combine("data"), FreePorts.Next(5), "Development")
            .Concat(["--ZeroTrust:AllowList:Redis=127.0.0.1:1", $"--ZeroTrust:DecisionStream:EventsPerEntry={value}"]).ToArray();

        var ex = Assert.Throws<StartupException>(() => ZeroTrustServer.Build(args));

        Assert.Equal("ZT-START-006", ex.Code);
        Assert.Contains("EventsPerEntry", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Start_InProductionWithDevelopmentPki_IsRefused()
    {
        using var temp = new TempDirectory();
        var pki = temp.Combine("pki");
        DevelopmentPki.Initialize(new DevPkiLayout(pki), force: false, TimeProvider.System);

        var ex = Assert.Throws<StartupException>(() => ZeroTrustServer.Build(ServerFixture.Arguments(pki, temp.Combine("data"), FreePorts.Next(5), "Production")));

        Assert.Equal("ZT-START-001", ex.Code);
    }

    [Fact]
    public void Start_InProductionWithoutPki_SaysWhatIsMissing()
    {
        using var temp = new TempDirectory();

        var ex = Assert.Throws<StartupException>(() => ZeroTrustServer.Build(ServerFixture.Arguments(temp.Combine("none"), temp.Combine("data"), FreePorts.Next(5), "Production")));

        Assert.Equal("ZT-START-002", ex.Code);
        Assert.False(File.Exists(Path.Combine(temp.Path, "none", "server.pem")), "no PKI may be generated outside Development");
    }

    [Fact]
    public void Start_WithInvalidListenerAddress_FailsWithClearError()
    {
        using var temp = new TempDirectory();
        var args = ServerFixture.Arguments(temp.Combine("pki"), temp.Combine("data"), FreePorts.Next(5), "Development")
            .Append("--ZeroTrust:Listeners:Device:Address=not-an-address").ToArray();

        var ex = Assert.Throws<StartupException>(() => ZeroTrustServer.Build(args));

        Assert.Equal("ZT-START-004", ex.Code);
    }
}
