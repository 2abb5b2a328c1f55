using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using StackExchange.Redis;
using KtZeroTrust.Attestation.Nonces;
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Pki.Attestation;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.Est;
using KtZeroTrust.Redis;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Attestation.Tests;

public sealed class NonceStoreTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task InMemory_NoncesAreSingleUse_BoundToTheirSerial_AndExpire()
    {
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var store = new InMemoryNonceStore(clock, capacity: 2);
        var nonce = await store.IssueAsync("FC-1", TimeSpan.FromMinutes(1), Ct);
        Assert.Equal("FC-1", await store.ConsumeAsync(nonce, Ct));
        Assert.Null(await store.ConsumeAsync(nonce, Ct));
        var expired = await store.IssueAsync("FC-1", TimeSpan.FromSeconds(30), Ct);
        clock.Advance(TimeSpan.FromSeconds(31));
        Assert.Null(await store.ConsumeAsync(expired, Ct));
        await store.IssueAsync("FC-2", TimeSpan.FromMinutes(1), Ct);
        await store.IssueAsync("FC-3", TimeSpan.FromMinutes(1), Ct);
        await Assert.ThrowsAsync<InvalidOperationException>(() => store.IssueAsync("FC-4", TimeSpan.FromMinutes(1), Ct)); // bounded
    }

    [Fact]
    public async Task Redis_NoncesAreSingleUse_AcrossNodes()
    {
        await using var nodeA = new RedisConnection(redis.Configuration);
        await using var nodeB = new RedisConnection(redis.Configuration);
        var nonce = await new RedisNonceStore(nodeA).IssueAsync("FC-9", TimeSpan.FromMinutes(1), Ct);
        var consumers = await Task.WhenAll(new RedisNonceStore(nodeA).ConsumeAsync(nonce, Ct), new RedisNonceStore(nodeB).ConsumeAsync(nonce, Ct));
        Assert.Equal(1, consumers.Count(c => c == "FC-9")); // exactly one node wins
        var ttl = await (await nodeA.DatabaseAsync()).KeyTimeToLiveAsync("zt:nonce:" + await new RedisNonceStore(nodeA).IssueAsync("FC-9", TimeSpan.FromSeconds(90), Ct));
        Assert.InRange(ttl!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(90));
    }
}

public sealed class EncodingTests
{
    [Theory]
    [InlineData("P256")]
    [InlineData("P384")]
    public void Csr_EcdsaP256AndP384_AreAccepted_WithTheirChallenge(string curve)
    {
        using var key = ECDsa.Create(curve == "P256" ? ECCurve.NamedCurves.nistP256 : ECCurve.NamedCurves.nistP384);
        var parsed = CsrParser.Parse(EstEncoding.CreateCsr("FC-1", key, "nonce-123"));
        Assert.Equal(("nonce-123", "FC-1"), (parsed.ChallengePassword, parsed.SubjectSerial));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo())), parsed.PublicKeySha256);
    }

    [Theory]
    [InlineData("signature")]
    [InlineData("point")]
    [InlineData("subject")]
    public void Csr_Tampered_IsRefused_ForItsSignature(string part)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var der = EstEncoding.CreateCsr("FC-1", key, "nonce-123");
        var spki = key.ExportSubjectPublicKeyInfo();
        var at = part switch
        {
            "signature" => der.Length - 3, // inside the signature's last integer
            "point" => der.AsSpan().IndexOf(spki) + spki.Length - 1, // the point's last byte: off the curve
            _ => der.AsSpan().IndexOf("FC-1"u8) + 3, // what was signed
        };
        der[at] ^= 0x01;
        Assert.Equal(ReasonCode.CsrSignatureInvalid, Assert.Throws<EnrollmentException>(() => CsrParser.Parse(der)).Reason);
    }

    [Fact]
    public void Csr_WithACompressedPoint_IsRefused_SayingSo()
    {
        // openssl writes compressed points when asked; .NET reads uncompressed ones only, so they are refused clearly.
        var dir = Directory.CreateTempSubdirectory("csr-compressed").FullName;
        try
        {
            string Run(string args)
            {
                using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("openssl", args) { WorkingDirectory = dir, RedirectStandardError = true })!;
                var error = process.StandardError.ReadToEnd();
                process.WaitForExit();
                Assert.True(process.ExitCode == 0, error);
                return error;
            }

            Run("ecparam -name prime256v1 -genkey -noout -out k.pem");
            Run("ec -in k.pem -conv_form compressed -out kc.pem");
            Run("req -new -key kc.pem -subj /CN=FC-1 -outform DER -out r.der");
            var refusal = Assert.Throws<EnrollmentException>(() => CsrParser.Parse(File.ReadAllBytes(Path.Combine(dir, "r.der"))));
            Assert.Equal(ReasonCode.KeyPolicyViolation, refusal.Reason);
            Assert.Contains("uncompressed", refusal.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(2048)]
    [InlineData(3072)] // accepted before: the gateway then refused the certificate it was issued
    [InlineData(4096)]
    public void Csr_WithAnRsaKey_IsRefused_TheGatewayAcceptsOnlyEcdsa(int bits)
    {
        using var rsa = RSA.Create(bits);
        var der = new CertificateRequest("CN=FC-1", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1).CreateSigningRequest();
        Assert.Equal(ReasonCode.KeyPolicyViolation, Assert.Throws<EnrollmentException>(() => CsrParser.Parse(der)).Reason);
    }

    [Fact]
    public void CertsOnly_RoundTrips_AndEvidenceVerifiesOnlyAgainstItsVendor()
    {
        using var ca = TestCertificates.CreateCa("CN=Vendor Root");
        using var other = TestCertificates.CreateCa("CN=Other Root");
        using var unit = TestCertificates.Device(ca, "FC-1");
        var certs = EstEncoding.ReadCertsOnly(EstEncoding.CertsOnly([ca.Certificate, unit]));
        Assert.Equal([ca.Certificate.Thumbprint, unit.Thumbprint], certs.Select(c => c.Thumbprint));

        var claims = new EvidenceClaims { Serial = "FC-1", Nonce = "n", Firmware = new FirmwareClaim("1.0", new string('a', 64)), Time = DateTimeOffset.UtcNow };
        var cms = Evidence.Create(claims, unit);
        Assert.Equal("FC-1", Evidence.Read(cms, new X509Certificate2Collection(ca.Certificate)).Claims.Serial);
        Assert.Equal(ReasonCode.EvidenceSignerUntrusted, Assert.Throws<EnrollmentException>(() => Evidence.Read(cms, new X509Certificate2Collection(other.Certificate))).Reason);
    }
}
