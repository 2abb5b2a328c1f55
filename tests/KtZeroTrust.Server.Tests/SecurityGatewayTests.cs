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

    public override string EnrollmentHost => HostAddress;

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

    /// <summary>strongSwan's <c>pki --verify --online</c> in the SeGW's namespace: the OCSP URL in the certificate's AIA, asked over https.</summary>
    public Task<(int Exit, string Output)> VerifyOnlineAsync(string certificate) => Tools.RunAsync("bash", [Script, "verify", Lab, Layout.Directory, certificate]);

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

    [Fact]
    public async Task PkiVerifyOnline_FromTheSeGw_ACmpEnrolledUnitIsNotRevoked_ThenRevokedInTheNextCheck()
    {
        var ct = TestContext.Current.CancellationToken;
        var cmp = new CmpClient(lab);
        await cmp.AttestAsync("FC-0004", ct);
        var certificate = cmp.Scratch("online.pem");
        var (exit, output) = await cmp.IrAsync("FC-0004", await cmp.NewKeyAsync("online.key"), certificate);
        Assert.True(exit == 0, output);

        // The AIA names the enrollment listener at the address the SeGW reaches it at; pki follows it (no URL given).
        var (goodExit, good) = await lab.VerifyOnlineAsync(certificate);
        Assert.True(goodExit == 0, good);
        Assert.Contains("certificate not revoked", good, StringComparison.Ordinal);
        Assert.Contains("ocsp response correctly signed", good, StringComparison.OrdinalIgnoreCase);

        await lab.TransitionAsync("FC-0004", DeviceLifecycleState.Revoked, "tamper switch");
        var (revokedExit, revoked) = await lab.VerifyOnlineAsync(certificate);
        Assert.NotEqual(0, revokedExit);
        Assert.Contains("certificate was revoked", revoked, StringComparison.Ordinal);
    }
}
