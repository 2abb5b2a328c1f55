using System.Net;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Attestation;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// The security gateway a femtocell really dials (3GPP TS 33.320): strongSwan's charon as an IKEv2 responder in one
/// network namespace (deploy/segw/), a femtocell's charon in another, and our server on the host answering the SeGW's
/// OCSP requests over the enrollment listener. The lab is built before the server starts (the server listens on the
/// lab's host address) and torn down after it.
/// </summary>
public sealed class SecurityGatewayFixture : ServerFixture
{
    public const string HostAddress = "10.77.1.1";
    private static readonly string Lab = Random.Shared.Next(1000, 9999).ToString(System.Globalization.CultureInfo.InvariantCulture);
    private readonly TempDirectory _pki;
    private bool _labUp;

    public SecurityGatewayFixture()
        : this(new TempDirectory("ktzt-segw-pki"))
    {
    }

    private SecurityGatewayFixture(TempDirectory pki)
        : base(pki.Path, null, [$"--ZeroTrust:Listeners:Enrollment:Address={HostAddress}"])
    {
        _pki = pki;
        Ports = FreePorts.Next(5);
    }

    public static string Script => Path.Combine(RepositoryPaths.Root, "deploy", "segw", "segw-lab.sh");

    public override async ValueTask InitializeAsync()
    {
        // The server's TLS certificate must name the address the SeGW reaches it at: the development one names loopback only.
        var layout = await WriteSampleFleetAsync(_pki.Path);
        DevelopmentPki.Initialize(layout, force: false, TimeProvider.System);
        using (var tlsRoot = new CertificateAuthority(PemFiles.ReadCertificateWithKey(layout.TlsRootCertificate, layout.TlsRootKey)))
        using (var server = tlsRoot.IssueWithNewKey(new X500DistinguishedName("CN=localhost"), CertificateUsage.ServerAuth, DateTimeOffset.UtcNow.AddMinutes(-5),
            DateTimeOffset.UtcNow.AddDays(1), dnsNames: ["localhost"], ipAddresses: [IPAddress.Loopback, IPAddress.Parse(HostAddress)]))
        {
            PemFiles.WriteCertificate(layout.ServerCertificate, server, overwrite: true);
            PemFiles.WritePrivateKey(layout.ServerKey, server.GetECDsaPrivateKey()!, overwrite: true);
        }

        var enrollment = $"https://{HostAddress}:{Ports![1]}";
        var up = await RunAsync(Script, "up", Lab, _pki.Path, enrollment + "/ocsp", enrollment + "/crl/operator-ca.crl");
        _labUp = true;
        Assert.Contains("up: SeGW", up, StringComparison.Ordinal);
        await base.InitializeAsync();
    }

    /// <summary>The femtocell dials with <paramref name="serial"/>'s LDevID: "established", or "refused: ...".</summary>
    public Task<string> ConnectAsync(string serial) => RunAsync(Script, "connect", Lab, _pki.Path, serial);

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (_labUp)
        {
            await RunAsync(Script, "down", Lab);
        }

        _pki.Dispose();
    }

    private static async Task<string> RunAsync(string script, params string[] args) => (await Tools.RunCheckedAsync("bash", [script, .. args])).Trim();
}

public sealed class SecurityGatewayTests(SecurityGatewayFixture lab) : IClassFixture<SecurityGatewayFixture>
{
    [Fact]
    public async Task AnActiveUnit_GetsItsTunnel_ARevokedUnitsNextIkeSaIsRefused_AndTheSeGwsOcspQuestionsAreDecisions()
    {
        Assert.Equal("established", await lab.ConnectAsync("FC-0001"));

        await lab.TransitionAsync("FC-0001", DeviceLifecycleState.Revoked, "stolen from its site");
        // The SeGW may keep the last answer until its nextUpdate (strongSwan does): the next IKE_SA after that.
        await Task.Delay(lab.Services.GetRequiredService<IOptions<AttestationOptions>>().Value.OcspValidity + TimeSpan.FromMilliseconds(500), TestContext.Current.CancellationToken);
        var refused = await lab.ConnectAsync("FC-0001");
        Assert.StartsWith("refused", refused, StringComparison.Ordinal);

        // Another unit is untouched by it.
        Assert.Equal("established", await lab.ConnectAsync("FC-0003"));

        var asked = (await lab.DecisionsAsync()).Where(d => d.TryGetProperty("route", out var r) && r.GetString() == "ocsp").ToList();
        Assert.All(asked, d => Assert.Equal("10.77.1.2", d.GetProperty("subject").GetString())); // the SeGW's address asks
        Assert.Contains(asked, d => d.GetProperty("reason").GetString() == "allowed" && d.GetProperty("detail").GetString()!.Contains("FC-0001", StringComparison.Ordinal));
        Assert.Contains(asked, d => d.GetProperty("reason").GetString() == "certificate_revoked" && d.GetProperty("detail").GetString()!.Contains("FC-0001", StringComparison.Ordinal));
    }
}
