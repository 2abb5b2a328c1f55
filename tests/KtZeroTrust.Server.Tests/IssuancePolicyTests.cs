using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>One key policy and one key-per-device rule, whatever path issued the certificate.</summary>
public sealed class IssuancePolicyTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Csr_ReusingTheKeyOfABootstrapIssuedCertificate_IsKeyShared_AndAlerted()
    {
        // FC-0001's sample certificate was issued by the development bootstrap, not over EST.
        using var fc1 = server.SampleCertificate("FC-0001");
        using var stolenKey = fc1.GetECDsaPrivateKey()!;
        using var factory = server.FactoryCertificate("FC-0005");
        using var unit = new EnrollmentClient(server, factory);
        var (nonce, _) = await unit.AttestAsync("FC-0005", factory, Ct);

        using var response = await unit.EnrollAsync(EnrollmentClient.Csr("FC-0005", nonce, stolenKey).Der, Ct);

        await DeviceGatewayTests.AssertProblemAsync(response, HttpStatusCode.Forbidden, "key_shared");
        await server.DecisionAsync(d => d.Text("kind") == "alert" && d.Text("reason") == "key_shared" && d.Text("subject") == "FC-0005", "the shared-key alert");
        Assert.Equal(PublicKeyHashOf(fc1), Assert.Single(await server.OpenRegistry().GetCertificatesAsync("FC-0001", Ct)).PublicKeySha256);
    }

    [Theory]
    [InlineData("rsa-3072")]
    [InlineData("rsa-4096")]
    [InlineData("p521")]
    public async Task Csr_WithAKeyTheGatewayWouldRefuse_IsRefused_AndTheWorkingCertificateStays(string keyKind)
    {
        using var factory = server.FactoryCertificate("FC-0006");
        using var unit = new EnrollmentClient(server, factory);
        var (nonce, _) = await unit.AttestAsync("FC-0006", factory, Ct);
        var csr = keyKind switch
        {
            "rsa-3072" => RsaCsr(3072, nonce),
            "rsa-4096" => RsaCsr(4096, nonce),
            _ => EnrollmentClient.Csr("FC-0006", nonce, ECDsa.Create(ECCurve.NamedCurves.nistP521)).Der,
        };

        using var response = await unit.EnrollAsync(csr, Ct);

        await DeviceGatewayTests.AssertProblemAsync(response, HttpStatusCode.BadRequest, "key_policy_violation");
        using var working = server.DeviceClient(server.SampleCertificate("FC-0006"));
        Assert.Equal(HttpStatusCode.OK, (await working.GetAsync(server.DeviceUri("/femto/status"), Ct)).StatusCode);
    }

    private static byte[] RsaCsr(int bits, string nonce)
    {
        using var rsa = RSA.Create(bits);
        var request = new CertificateRequest(DeviceCertificates.Subject("FC-0006", "KtZeroTrust Operator"), rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.OtherRequestAttributes.Add(new AsnEncodedData("1.2.840.113549.1.9.7", EncodeUtf8String(nonce)));
        return request.CreateSigningRequest();
    }

    private static byte[] EncodeUtf8String(string text)
    {
        var writer = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
        writer.WriteCharacterString(System.Formats.Asn1.UniversalTagNumber.UTF8String, text);
        return writer.Encode();
    }

    private static string PublicKeyHashOf(X509Certificate2 certificate) => KtZeroTrust.Core.Certificates.PublicKeyHash.Hex(certificate.PublicKey);
}

public sealed class BootCounterTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Evidence_WithABootCounterLowerThanTheLastAttested_IsRefused_AndAlerted()
    {
        using var factory = server.FactoryCertificate("FC-0002");
        using var unit = new EnrollmentClient(server, factory);
        await unit.AttestAsync("FC-0002", factory, Ct, c => c with { BootCounter = 40 });
        await unit.AttestAsync("FC-0002", factory, Ct, c => c with { BootCounter = 40 }); // same boot: a renewal, fine

        var nonce = await unit.NonceAsync(Ct);
        using var replayed = await unit.EvidenceAsync(KtZeroTrust.Pki.Attestation.Evidence.Create(TestReference.HonestClaims("FC-0002", nonce) with { BootCounter = 39 }, factory), Ct);

        await DeviceGatewayTests.AssertProblemAsync(replayed, HttpStatusCode.Forbidden, "boot_counter_rollback");
        await server.DecisionAsync(d => d.Text("kind") == "alert" && d.Text("reason") == "boot_counter_rollback" && d.Text("subject") == "FC-0002", "the boot-counter alert");
        await unit.AttestAsync("FC-0002", factory, Ct, c => c with { BootCounter = 41 }); // the next boot attests again
    }
}
