using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>CMPv2 at /.well-known/cmp with the client base stations' vendors test against: <c>openssl cmp</c>.</summary>
public sealed class CmpTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private readonly CmpClient cmp = new(server);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Genm_SignedWithTheIDevId_GetsTheOperatorCaInAResponseProtectedByTheOperatorsRa()
    {
        var (exit, output) = await CmpAsync("-cmd", "genm", "-cert", server.Layout.IDevIdCertificate("FC-0002"), "-key", server.Layout.IDevIdKey("FC-0002"));

        Assert.True(exit == 0, output); // openssl verified the response's protection against -trusted (the operator CA)
        Assert.Contains("genp contains ITAV of type: id-it-caCerts", output, StringComparison.Ordinal);
        var decision = (await server.DecisionsAsync()).Last(d => d.TryGetProperty("route", out var r) && r.GetString() == "cmp:genm");
        Assert.Equal(("allowed", "FC-0002"), (decision.GetProperty("reason").GetString(), decision.GetProperty("subject").GetString()));
    }

    [Fact]
    public async Task Refusals_AreCmpErrorsWithOurReasonCode_AndDecisions()
    {
        // A shared-secret MAC (TS 33.310 wants the vendor certificate), and a look-alike key no vendor signed.
        var (macExit, mac) = await CmpAsync("-cmd", "genm", "-ref", "FC-0002", "-secret", "pass:guessable");
        Assert.NotEqual(0, macExit);
        Assert.Contains("cmp_algorithm_not_allowed", mac, StringComparison.Ordinal);

        var key = Path.Combine(server.Scratch, "lookalike-" + Guid.NewGuid().ToString("N"));
        await RunAsync("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key + ".key", "-out", key + ".pem", "-subj", "/CN=FC-0002", "-days", "1");
        var (forgedExit, forged) = await CmpAsync("-cmd", "genm", "-cert", key + ".pem", "-key", key + ".key");
        Assert.NotEqual(0, forgedExit);
        Assert.Contains("cmp_protection_invalid", forged, StringComparison.Ordinal);

        // A general message asking for what this CA does not answer is refused for what it is.
        var (infoExit, info) = await CmpAsync("-cmd", "genm", "-cert", server.Layout.IDevIdCertificate("FC-0002"), "-key", server.Layout.IDevIdKey("FC-0002"),
            "-infotype", "signKeyPairTypes");
        Assert.NotEqual(0, infoExit);
        Assert.Contains("cmp_request_unsupported", info, StringComparison.Ordinal);

        // Not a PKIMessage at all: still a signed CMP error (HTTP 200, RFC 6712), and the wrong media type is HTTP 415.
        using var http = server.ConsoleClient();
        using var garbage = new ByteArrayContent("hello"u8.ToArray());
        garbage.Headers.ContentType = new MediaTypeHeaderValue("application/pkixcmp");
        var malformed = await http.PostAsync(server.EnrollmentUri("/.well-known/cmp"), garbage, Ct);
        Assert.Equal(HttpStatusCode.OK, malformed.StatusCode);
        Assert.Equal("application/pkixcmp", malformed.Content.Headers.ContentType?.MediaType);
        var error = Org.BouncyCastle.Asn1.Cmp.PkiMessage.GetInstance(await malformed.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal(Org.BouncyCastle.Asn1.Cmp.PkiBody.TYPE_ERROR, error.Body.Type);
        using var text = new StringContent("hello");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await http.PostAsync(server.EnrollmentUri("/.well-known/cmp"), text, Ct)).StatusCode);

        var reasons = (await server.DecisionsAsync()).Where(d => d.TryGetProperty("route", out var r) && r.GetString()!.StartsWith("cmp", StringComparison.Ordinal))
            .Select(d => d.GetProperty("reason").GetString()).ToList();
        Assert.Contains("cmp_algorithm_not_allowed", reasons);
        Assert.Contains("cmp_protection_invalid", reasons);
        Assert.Contains("cmp_request_unsupported", reasons);
        Assert.Contains("request_malformed", reasons);
        Assert.Contains("unsupported_media_type", reasons);
    }

    [Fact]
    public async Task Ir_SignedWithTheIDevIdAfterAttestation_IsRecordedOnCertConf_TheGatewayAdmitsIt_AndTheAttestationServesOnce()
    {
        const string serial = "FC-0003";
        await AttestAsync(serial);
        var (key, certificate) = (Scratch("ir.key"), Scratch("ir.pem"));
        await RunAsync("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key);

        var (exit, output) = await IrAsync(serial, key, certificate);

        Assert.True(exit == 0, output);
        Assert.Contains("sending CERTCONF", output, StringComparison.Ordinal);
        Assert.Contains("received PKICONF", output, StringComparison.Ordinal);
        using var issued = X509Certificate2.CreateFromPemFile(certificate, key);
        Assert.Equal(serial, KtZeroTrust.Pki.Certificates.DeviceCertificates.SerialOf(issued));
        Assert.Equal(PemFiles.ReadCertificate(server.Layout.OperatorCaCertificate).Subject, issued.Issuer);
        using var device = server.DeviceClient(issued);
        var reached = await Eventually.Until(() => device.GetAsync(server.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.OK, "the CMP-enrolled unit to be admitted");
        Assert.Contains(serial, await reached.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

        // The same attestation again (a replay of the enrollment, or a cloned IDevID): refused, nothing issued.
        var (again, refused) = await IrAsync(serial, key, Scratch("again.pem"));
        Assert.NotEqual(0, again);
        Assert.Contains("attestation_required", refused, StringComparison.Ordinal);
        var decisions = (await server.DecisionsAsync()).Where(d => d.TryGetProperty("route", out var r) && r.GetString() is "cmp:ir" or "cmp:certConf").Select(d => d.GetProperty("reason").GetString()).ToList();
        Assert.Equal(["allowed", "allowed", "attestation_required"], decisions.TakeLast(3));
    }

    [Fact]
    public async Task Ir_WithImplicitConfirm_IsRecordedAtOnce_WithoutAttestation_OrSignedByAnLdevId_IsRefused()
    {
        const string serial = "FC-0005";
        var key = Scratch("implicit.key");
        await RunAsync("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key);
        var (unattested, noAttestation) = await IrAsync(serial, key, Scratch("none.pem"));
        Assert.NotEqual(0, unattested);
        Assert.Contains("attestation_required", noAttestation, StringComparison.Ordinal);

        var (ldevid, byLdevid) = await CmpAsync("-cmd", "ir", "-cert", server.Layout.LDevIdCertificate("FC-0006"), "-key", server.Layout.LDevIdKey("FC-0006"),
            "-newkey", key, "-subject", "/CN=FC-0006", "-certout", Scratch("ldevid.pem"));
        Assert.NotEqual(0, ldevid);
        Assert.Contains("cmp_protection_invalid", byLdevid, StringComparison.Ordinal);

        await AttestAsync(serial);
        var certificate = Scratch("implicit.pem");
        var (exit, output) = await IrAsync(serial, key, certificate, "-implicit_confirm");
        Assert.True(exit == 0, output);
        Assert.DoesNotContain("CERTCONF", output, StringComparison.Ordinal);
        Assert.Contains(await server.OpenRegistry().GetCertificatesAsync(serial, Ct), c => c.RevokedAt is null && c.Sha256 == KtZeroTrust.Core.Certificates.CertificateHash.Of(PemFiles.ReadCertificate(certificate)).ToString());
    }

    [Fact]
    public async Task Kur_SignedWithTheCurrentLdevIdAfterAFreshAttestation_RenewsAndSupersedesIt()
    {
        const string serial = "FC-0004";
        await AttestAsync(serial);
        var (firstKey, first) = (Scratch("first.key"), Scratch("first.pem"));
        await RunAsync("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", firstKey);
        var (irExit, ir) = await IrAsync(serial, firstKey, first);
        Assert.True(irExit == 0, ir);

        // The renewal's attestation is posted with the certificate being renewed (as EST's simplereenroll wants).
        using (var factory = server.FactoryCertificate(serial))
        using (var current = X509Certificate2.CreateFromPemFile(first, firstKey))
        using (var unit = new EnrollmentClient(server, current))
        {
            await unit.AttestAsync(serial, factory, Ct);
        }

        var (secondKey, second) = (Scratch("second.key"), Scratch("second.pem"));
        await RunAsync("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", secondKey);
        var (kurExit, kur) = await CmpAsync("-cmd", "kur", "-cert", first, "-key", firstKey, "-newkey", secondKey, "-certout", second);

        Assert.True(kurExit == 0, kur);
        Assert.Contains("received KUP", kur, StringComparison.Ordinal);
        var certificates = await server.OpenRegistry().GetCertificatesAsync(serial, Ct);
        string HashOf(string pem) => KtZeroTrust.Core.Certificates.CertificateHash.Of(PemFiles.ReadCertificate(pem)).ToString();
        Assert.Equal("superseded", certificates.Single(c => c.Sha256 == HashOf(first)).RevocationReason);
        Assert.Null(certificates.Single(c => c.Sha256 == HashOf(second)).RevokedAt);

        // The IDevID cannot renew, and the superseded certificate cannot renew again.
        var (byFactory, factoryOutput) = await CmpAsync("-cmd", "kur", "-cert", server.Layout.IDevIdCertificate(serial), "-key", server.Layout.IDevIdKey(serial),
            "-oldcert", second, "-newkey", secondKey, "-certout", Scratch("x.pem"));
        Assert.NotEqual(0, byFactory);
        Assert.Contains("cmp_protection_invalid", factoryOutput, StringComparison.Ordinal);
        var (byOld, oldOutput) = await CmpAsync("-cmd", "kur", "-cert", first, "-key", firstKey, "-newkey", secondKey, "-certout", Scratch("y.pem"));
        Assert.NotEqual(0, byOld);
        Assert.Contains("certificate_revoked", oldOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cr_SignedWithTheCurrentLdevId_AndP10cr_SignedWithTheIDevId_AreServedUnderTheRulesOfIrAndKur()
    {
        // cr: FC-0002 asks for a certificate with its current LDevID, after an attestation posted with that LDevID.
        using (var factory = server.FactoryCertificate("FC-0002"))
        using (var current = server.SampleCertificate("FC-0002"))
        using (var unit = new EnrollmentClient(server, current))
        {
            await unit.AttestAsync("FC-0002", factory, Ct);
        }

        var (crKey, crCertificate) = (Scratch("cr.key"), Scratch("cr.pem"));
        await RunAsync("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", crKey);
        var (crExit, cr) = await CmpAsync("-cmd", "cr", "-cert", server.Layout.LDevIdCertificate("FC-0002"), "-key", server.Layout.LDevIdKey("FC-0002"),
            "-newkey", crKey, "-subject", "/CN=FC-0002", "-certout", crCertificate);
        Assert.True(crExit == 0, cr);
        Assert.Contains("received CP", cr, StringComparison.Ordinal);
        Assert.Contains("received PKICONF", cr, StringComparison.Ordinal);
        Assert.Equal("FC-0002", DeviceCertificates.SerialOf(PemFiles.ReadCertificate(crCertificate)));

        // p10cr: FC-0001 sends a PKCS#10 request signed with its IDevID after attesting with it.
        await AttestAsync("FC-0001");
        string[] byIdevid = ["-cert", server.Layout.IDevIdCertificate("FC-0001"), "-key", server.Layout.IDevIdKey("FC-0001")];
        var key = Scratch("p10.key");
        await RunAsync("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key);
        async Task<string> CsrAsync(string subject, string withKey)
        {
            var csr = Scratch("p10.csr");
            await Tools.RunCheckedAsync("openssl", ["req", "-new", "-key", withKey, "-subj", subject, "-out", csr], Ct);
            return csr;
        }

        // Refusals first, to show they spend nothing: a CSR for another unit's name, an RSA key (the device key policy).
        var (otherExit, other) = await CmpAsync(["-cmd", "p10cr", .. byIdevid, "-csr", await CsrAsync("/CN=FC-0006", key), "-certout", Scratch("other.pem")]);
        Assert.NotEqual(0, otherExit);
        Assert.Contains("csr_identity_mismatch", other, StringComparison.Ordinal);
        var rsa = Scratch("rsa.key");
        await RunAsync("openssl", "genrsa", "-out", rsa, "2048");
        var (rsaExit, rsaOutput) = await CmpAsync(["-cmd", "p10cr", .. byIdevid, "-csr", await CsrAsync("/CN=FC-0001", rsa), "-certout", Scratch("rsa.pem")]);
        Assert.NotEqual(0, rsaExit);
        Assert.Contains("key_policy_violation", rsaOutput, StringComparison.Ordinal);

        var certificate = Scratch("p10.pem");
        var (exit, output) = await CmpAsync(["-cmd", "p10cr", .. byIdevid, "-csr", await CsrAsync("/CN=FC-0001", key), "-certout", certificate]);
        Assert.True(exit == 0, output);
        Assert.Contains("received CP", output, StringComparison.Ordinal);
        using var issued = X509Certificate2.CreateFromPemFile(certificate, key);
        using var device = server.DeviceClient(issued);
        await Eventually.Until(() => device.GetAsync(server.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.OK, "the p10cr-enrolled unit to be admitted");
        var reasons = (await server.DecisionsAsync()).Where(d => d.Text("route") is "cmp:p10cr" or "cmp:cr").Select(d => d.Text("reason")).ToList();
        Assert.Equal(["allowed", "csr_identity_mismatch", "key_policy_violation", "allowed"], reasons);
    }

    [Fact]
    public async Task Rr_AUnitRevokesItsOwnCertificate_NeverAnotherUnits()
    {
        string[] signedByFc6 = ["-cert", server.Layout.LDevIdCertificate("FC-0006"), "-key", server.Layout.LDevIdKey("FC-0006")];
        var (otherExit, other) = await CmpAsync(["-cmd", "rr", .. signedByFc6, "-oldcert", server.Layout.LDevIdCertificate("FC-0001")]);
        Assert.NotEqual(0, otherExit);
        Assert.Contains("the signer's own", other, StringComparison.Ordinal);
        Assert.Equal(DeviceLifecycleState.Active, (await server.OpenRegistry().FindAsync("FC-0001", Ct))!.State);

        var (exit, output) = await CmpAsync(["-cmd", "rr", .. signedByFc6, "-oldcert", server.Layout.LDevIdCertificate("FC-0006")]);

        Assert.True(exit == 0, output);
        Assert.Contains("received RP", output, StringComparison.Ordinal);
        Assert.Equal(DeviceLifecycleState.Revoked, (await server.OpenRegistry().FindAsync("FC-0006", Ct))!.State);
        Assert.Equal("cmp:rr", (await server.OpenRegistry().GetHistoryAsync("FC-0006", Ct))[^1].Actor);
        var (again, againOutput) = await CmpAsync(["-cmd", "rr", .. signedByFc6, "-oldcert", server.Layout.LDevIdCertificate("FC-0006")]);
        Assert.NotEqual(0, again);
        Assert.Contains("certificate_revoked", againOutput, StringComparison.Ordinal);
    }

    private string Scratch(string name) => cmp.Scratch(name);

    private Task AttestAsync(string serial) => cmp.AttestAsync(serial, Ct);

    private Task<(int Exit, string Output)> IrAsync(string serial, string key, string certificate, params string[] extra) => cmp.IrAsync(serial, key, certificate, extra);

    private Task<(int Exit, string Output)> CmpAsync(params string[] args) => cmp.RunAsync(args);

    private static Task<(int Exit, string Output)> RunAsync(string file, params string[] args) => Tools.RunAsync(file, args, Ct);
}
