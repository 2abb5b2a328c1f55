using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Attestation;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>Attestation and EST enrollment end to end against the real server: honest units pass, every attack has its reason.</summary>
public sealed class EnrollmentTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task HonestUnit_AttestsEnrollsWithItsFactoryCertificate_AndReachesTheGateway()
    {
        using var factory = server.FactoryCertificate("FC-0001");
        using var unit = new EnrollmentClient(server, factory);
        var (nonce, _) = await unit.AttestAsync("FC-0001", factory, Ct);
        var (csr, key) = EnrollmentClient.Csr("FC-0001", nonce);

        using var response = await unit.EnrollAsync(csr, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/pkcs7-mime", response.Content.Headers.ContentType?.MediaType);
        using var issued = await EnrollmentClient.IssuedAsync(response, key, Ct);
        Assert.Equal("FC-0001", DeviceCertificates.SerialOf(issued));
        Assert.True(issued.NotAfter - issued.NotBefore <= TimeSpan.FromHours(24.1));
        Assert.Contains(issued.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<Oid>(), o => o.Value == "1.3.6.1.5.5.7.3.2");
        Assert.NotNull(issued.Extensions["2.5.29.31"]); // CRL distribution point

        using var device = server.DeviceClient(issued);
        using var allowed = await device.GetAsync(server.DeviceUri("/femto/status"), Ct);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        await server.DecisionAsync(d => d.Text("route") == "est-simpleenroll" && d.Text("subject") == "FC-0001" && d.Text("outcome") == "allow", "the enrollment decision");
    }

    [Fact]
    public async Task HttpBasicWithTheEnrollmentToken_Enrolls_AndAWrongTokenDoesNot()
    {
        using var factory = server.FactoryCertificate("FC-0002");
        using var unit = new EnrollmentClient(server, factory);
        var (nonce, token) = await unit.AttestAsync("FC-0002", factory, Ct);
        using var anonymous = new EnrollmentClient(server, null);

        var (csr, _) = EnrollmentClient.Csr("FC-0002", nonce);
        using var wrong = await anonymous.EnrollAsync(csr, Ct, basic: ("FC-0002", "not-the-token"));
        await DeviceGatewayTests.AssertProblemAsync(wrong, HttpStatusCode.Unauthorized, "enrollment_token_invalid");

        using var right = await anonymous.EnrollAsync(csr, Ct, basic: ("FC-0002", token));
        Assert.Equal(HttpStatusCode.OK, right.StatusCode);

        // The attestation is single use.
        var (again, _) = EnrollmentClient.Csr("FC-0002", nonce);
        using var replay = await anonymous.EnrollAsync(again, Ct, basic: ("FC-0002", token));
        await DeviceGatewayTests.AssertProblemAsync(replay, HttpStatusCode.Forbidden, "attestation_required");
    }

    public static TheoryData<string, string> RogueEvidence => new()
    {
        { "bad-firmware-digest", "firmware_unknown" },
        { "old-firmware", "firmware_rollback" },
        { "ssh-enabled", "configuration_forbidden" },
        { "moved-unit", "location_outside_site" },
        { "foreign-cells", "neighbour_cells_mismatch" },
        { "stale-evidence", "evidence_stale" },
        { "claims-other-serial", "identity_mismatch" },
        { "made-up-nonce", "nonce_invalid" },
    };

    [Theory]
    [MemberData(nameof(RogueEvidence))]
    public async Task RogueEvidence_IsRefused_WithItsReason_AndRecorded(string scenario, string reason)
    {
        using var factory = server.FactoryCertificate("FC-0003");
        using var unit = new EnrollmentClient(server, factory);
        var nonce = await unit.NonceAsync(Ct);
        var claims = TestReference.HonestClaims("FC-0003", nonce);
        claims = scenario switch
        {
            "bad-firmware-digest" => claims with { Firmware = new FirmwareClaim(TestReference.CurrentVersion, new string('0', 64)) },
            "old-firmware" => claims with { Firmware = new FirmwareClaim(TestReference.OldVersion, TestReference.Digest(TestReference.OldVersion)) },
            "ssh-enabled" => claims with { Config = new Dictionary<string, bool> { ["ssh_enabled"] = true } },
            "moved-unit" => claims with { Location = new LocationClaim(35.1, 129.0) },
            "foreign-cells" => claims with { NeighbourCells = ["310-260-0001-0001"] },
            "stale-evidence" => claims with { Time = DateTimeOffset.UtcNow.AddHours(-1) },
            "claims-other-serial" => claims with { Serial = "FC-0004" },
            "made-up-nonce" => claims with { Nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
            _ => throw new ArgumentOutOfRangeException(nameof(scenario)),
        };

        using var response = await unit.EvidenceAsync(Evidence.Create(claims, factory), Ct);

        var problem = await DeviceGatewayTests.AssertProblemAsync(response, HttpStatusCode.Forbidden, reason);
        Assert.Contains(reason, problem.GetProperty("reasons").EnumerateArray().Select(r => r.GetString()));
        var id = problem.GetProperty("decisionId").GetString();
        var decision = await server.DecisionAsync(d => d.Text("id") == id, "the refusal's decision");
        Assert.Equal(("attestation", "deny"), (decision.Text("route"), decision.Text("outcome")));
    }

    [Fact]
    public async Task ReplayedNonce_IsRefused()
    {
        using var factory = server.FactoryCertificate("FC-0004");
        using var unit = new EnrollmentClient(server, factory);
        var nonce = await unit.NonceAsync(Ct);
        var evidence = Evidence.Create(TestReference.HonestClaims("FC-0004", nonce), factory);
        using var first = await unit.EvidenceAsync(evidence, Ct);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);

        using var replay = await unit.EvidenceAsync(evidence, Ct);
        await DeviceGatewayTests.AssertProblemAsync(replay, HttpStatusCode.Forbidden, "nonce_invalid");
    }

    [Fact]
    public async Task EvidenceSignedByAnotherUnitOrAForeignKey_IsRefused()
    {
        using var mine = server.FactoryCertificate("FC-0005");
        using var other = server.FactoryCertificate("FC-0006");
        using var unit = new EnrollmentClient(server, mine);

        var nonce = await unit.NonceAsync(Ct);
        using var borrowed = await unit.EvidenceAsync(Evidence.Create(TestReference.HonestClaims("FC-0005", nonce), other), Ct);
        await DeviceGatewayTests.AssertProblemAsync(borrowed, HttpStatusCode.Forbidden, "identity_mismatch");

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var rogue = new CertificateRequest(mine.SubjectName, key, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var nonce2 = await unit.NonceAsync(Ct);
        using var untrusted = await unit.EvidenceAsync(Evidence.Create(TestReference.HonestClaims("FC-0005", nonce2), rogue), Ct);
        await DeviceGatewayTests.AssertProblemAsync(untrusted, HttpStatusCode.Forbidden, "evidence_signer_untrusted");

        var tampered = Evidence.Create(TestReference.HonestClaims("FC-0005", await unit.NonceAsync(Ct)), mine);
        var at = tampered.AsSpan().IndexOf("\"bootCounter\":7"u8);
        tampered[at + 14] = (byte)'9';
        using var forged = await unit.EvidenceAsync(tampered, Ct);
        await DeviceGatewayTests.AssertProblemAsync(forged, HttpStatusCode.Forbidden, "evidence_signature_invalid");
    }

    [Fact]
    public async Task UnknownSerial_AndDecommissionedUnit_GetNoNonce()
    {
        // A genuine factory certificate (vendor-signed) for a serial the operator never imported.
        using var vendor = new CertificateAuthority(PemFiles.ReadCertificateWithKey(server.Layout.VendorRootCertificate, server.Layout.VendorRootKey));
        using var stranger = vendor.IssueWithNewKey(DeviceCertificates.Subject("FC-7777", "Vendor"), CertificateUsage.ClientAuth,
            DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), uri: DeviceCertificates.DeviceUri("FC-7777"));
        using var unknown = new EnrollmentClient(server, stranger);
        await DeviceGatewayTests.AssertProblemAsync(await unknown.NonceResponseAsync(Ct), HttpStatusCode.Forbidden, "device_unknown");

        await server.TransitionAsync("FC-0006", DeviceLifecycleState.Decommissioned, "retired");
        using var retired = new EnrollmentClient(server, server.FactoryCertificate("FC-0006"));
        await DeviceGatewayTests.AssertProblemAsync(await retired.NonceResponseAsync(Ct), HttpStatusCode.Forbidden, "device_not_enrollable");

        using var none = new EnrollmentClient(server, null);
        await DeviceGatewayTests.AssertProblemAsync(await none.NonceResponseAsync(Ct), HttpStatusCode.Unauthorized, "client_certificate_required");
    }

    [Fact]
    public async Task SharedKey_CsrForAnotherIdentity_AndNoAttestation_AreRefused()
    {
        using var f1 = server.FactoryCertificate("FC-0001");
        using var u1 = new EnrollmentClient(server, f1);
        var (n1, _) = await u1.AttestAsync("FC-0001", f1, Ct);
        using var shared = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var ok = await u1.EnrollAsync(EnrollmentClient.Csr("FC-0001", n1, shared).Der, Ct);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        using var f2 = server.FactoryCertificate("FC-0002");
        using var u2 = new EnrollmentClient(server, f2);
        var (n2, _) = await u2.AttestAsync("FC-0002", f2, Ct);
        using var fleetKey = await u2.EnrollAsync(EnrollmentClient.Csr("FC-0002", n2, shared).Der, Ct);
        await DeviceGatewayTests.AssertProblemAsync(fleetKey, HttpStatusCode.Forbidden, "key_shared");
        await server.DecisionAsync(d => d.Text("kind") == "alert" && d.Text("reason") == "key_shared" && d.Text("subject") == "FC-0002", "the shared-key alert");

        using var otherName = await u2.EnrollAsync(EnrollmentClient.Csr("FC-0001", n2).Der, Ct);
        await DeviceGatewayTests.AssertProblemAsync(otherName, HttpStatusCode.Forbidden, "csr_identity_mismatch");

        using var unattested = await u2.EnrollAsync(EnrollmentClient.Csr("FC-0002", "made-up").Der, Ct);
        await DeviceGatewayTests.AssertProblemAsync(unattested, HttpStatusCode.Forbidden, "attestation_required");
        using var noChallenge = await u2.EnrollAsync(EnrollmentClient.Csr("FC-0002", null).Der, Ct);
        await DeviceGatewayTests.AssertProblemAsync(noChallenge, HttpStatusCode.Forbidden, "attestation_required");
    }

    [Fact]
    public async Task BadInput_GetsA4xxWithItsReason_NeverA500()
    {
        using var factory = server.FactoryCertificate("FC-0003");
        using var unit = new EnrollmentClient(server, factory);
        var (csr, _) = EnrollmentClient.Csr("FC-0003", "x");

        await DeviceGatewayTests.AssertProblemAsync(await unit.EnrollAsync(csr, Ct, contentType: "application/json"), HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");
        await DeviceGatewayTests.AssertProblemAsync(await unit.EnrollAsync(new byte[200_000], Ct), HttpStatusCode.RequestEntityTooLarge, "payload_too_large");
        await DeviceGatewayTests.AssertProblemAsync(await unit.EnrollAsync([1, 2, 3, 4, 5], Ct), HttpStatusCode.BadRequest, "csr_malformed");
        var broken = csr.ToArray();
        broken[^5] ^= 0xFF; // inside the signature
        await DeviceGatewayTests.AssertProblemAsync(await unit.EnrollAsync(broken, Ct), HttpStatusCode.BadRequest, "csr_signature_invalid");

        using var rsa = RSA.Create(2048);
        var weak = new CertificateRequest("CN=FC-0003", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1).CreateSigningRequest();
        await DeviceGatewayTests.AssertProblemAsync(await unit.EnrollAsync(weak, Ct), HttpStatusCode.BadRequest, "key_policy_violation");

        await DeviceGatewayTests.AssertProblemAsync(await unit.EvidenceAsync("not cms at all"u8.ToArray(), Ct), HttpStatusCode.BadRequest, "evidence_malformed");
        await DeviceGatewayTests.AssertProblemAsync(await unit.EvidenceAsync([1, 2], Ct, "text/plain"), HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");
        await DeviceGatewayTests.AssertProblemAsync(await unit.EvidenceAsync("%%%"u8.ToArray(), Ct, "application/pkcs7-mime"), HttpStatusCode.BadRequest, "evidence_malformed");
    }

    [Fact]
    public async Task Reenrollment_WithTheCurrentCertificate_RetiresIt_AndTheCrlListsIt()
    {
        using var factory = server.FactoryCertificate("FC-0004");
        using var unit = new EnrollmentClient(server, factory);
        var (nonce, _) = await unit.AttestAsync("FC-0004", factory, Ct);
        var (csr, key) = EnrollmentClient.Csr("FC-0004", nonce);
        using var first = await EnrollmentClient.IssuedAsync(await unit.EnrollAsync(csr, Ct), key, Ct);

        // Renewal: TLS with the current LDevID, fresh evidence (signed by the IDevID) posted over that connection.
        using var renewing = new EnrollmentClient(server, first);
        var (renewNonce, _) = await renewing.AttestAsync("FC-0004", factory, Ct);
        var (csr2, key2) = EnrollmentClient.Csr("FC-0004", renewNonce);
        using var renewed = await renewing.EnrollAsync(csr2, Ct, reenroll: true);
        Assert.Equal(HttpStatusCode.OK, renewed.StatusCode);
        using var second = await EnrollmentClient.IssuedAsync(renewed, key2, Ct);

        using var oldClient = server.DeviceClient(first);
        await DeviceGatewayTests.AssertProblemAsync(await oldClient.GetAsync(server.DeviceUri("/femto/status"), Ct), HttpStatusCode.Forbidden, "certificate_revoked");
        using var newClient = server.DeviceClient(second);
        Assert.Equal(HttpStatusCode.OK, (await newClient.GetAsync(server.DeviceUri("/femto/status"), Ct)).StatusCode);

        using var anyone = server.DeviceClient(null);
        var crl = await anyone.GetByteArrayAsync(server.EnrollmentUri("/crl/operator-ca.crl"), Ct);
        var text = Convert.ToHexString(crl);
        Assert.Contains(first.SerialNumber, text, StringComparison.Ordinal);
        Assert.DoesNotContain(second.SerialNumber, text, StringComparison.Ordinal);

        // simplereenroll with the factory certificate instead of the current LDevID is refused.
        using var wrongCredential = await unit.EnrollAsync(EnrollmentClient.Csr("FC-0004", renewNonce).Der, Ct, reenroll: true);
        await DeviceGatewayTests.AssertProblemAsync(wrongCredential, HttpStatusCode.Unauthorized, "client_certificate_required");
    }

    [Fact]
    public async Task CaCertsAndCsrAttrs_AreServed()
    {
        using var anyone = server.DeviceClient(null);
        using var cacerts = await anyone.GetAsync(server.EnrollmentUri("/.well-known/est/cacerts"), Ct);
        Assert.Equal("application/pkcs7-mime", cacerts.Content.Headers.ContentType?.MediaType);
        var cms = new System.Security.Cryptography.Pkcs.SignedCms();
        cms.Decode(Convert.FromBase64String(await cacerts.Content.ReadAsStringAsync(Ct)));
        Assert.Equal(PemFiles.ReadCertificate(server.Layout.OperatorCaCertificate).Thumbprint, Assert.Single(cms.Certificates).Thumbprint);

        using var attrs = await anyone.GetAsync(server.EnrollmentUri("/.well-known/est/csrattrs"), Ct);
        Assert.Equal("application/csrattrs", attrs.Content.Headers.ContentType?.MediaType);
        Assert.NotEmpty(Convert.FromBase64String(await attrs.Content.ReadAsStringAsync(Ct)));
    }
}
