using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Pki.Certificates;

namespace KtZeroTrust.Pki.Tests;

/// <summary>What the operator CA writes into what it issues, for the clients that read it (a SeGW asking OCSP).</summary>
public sealed class CertificateAuthorityTests
{
    [Fact]
    public void ADeviceCertificate_NamesTheOcspResponderAndTheCrl_AndItsSerialIsSixteenPositiveBytes()
    {
        using var ca = CertificateAuthority.CreateRoot("CN=Test Operator CA, O=Test", TimeSpan.FromDays(30), TimeProvider.System);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;

        for (var i = 0; i < 64; i++)
        {
            using var certificate = ca.Issue(new X500DistinguishedName("CN=FC-1"), new PublicKey(key), CertificateUsage.ClientAuth, now, now.AddHours(1),
                crlDistributionPoints: ["https://ra.example/crl/operator-ca.crl"], ocspResponders: ["https://ra.example/ocsp"]);

            var aia = certificate.Extensions.OfType<X509AuthorityInformationAccessExtension>().Single();
            Assert.Equal(["https://ra.example/ocsp"], aia.EnumerateOcspUris());
            Assert.Single(certificate.Extensions.OfType<X509Extension>(), e => e.Oid?.Value == "2.5.29.31"); // CRL distribution points
            var serial = Convert.FromHexString(certificate.SerialNumber); // big-endian, as encoded
            Assert.Equal(16, serial.Length); // no leading zero for a client to trim or a strict parser to refuse
            Assert.True(serial[0] is >= 0x40 and < 0x80);
        }
    }

    [Fact]
    public void AnOcspResponderCertificate_IsForOcspSigningOnly_AndNotCheckedByOcspItself()
    {
        using var ca = CertificateAuthority.CreateRoot("CN=Test Operator CA, O=Test", TimeSpan.FromDays(30), TimeProvider.System);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;

        using var responder = ca.Issue(new X500DistinguishedName("CN=OCSP responder"), new PublicKey(key), CertificateUsage.OcspSigning, now, now.AddDays(1));

        var eku = responder.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single();
        Assert.Equal(["1.3.6.1.5.5.7.3.9"], eku.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value));
        Assert.Contains(responder.Extensions.OfType<X509Extension>(), e => e.Oid?.Value == "1.3.6.1.5.5.7.48.1.5"); // id-pkix-ocsp-nocheck
    }
}
