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

    [Fact]
    public void AnOperationalCertificate_CarriesARenewalHint_At50To80PercentOfItsLifetime_SpreadAcrossUnits()
    {
        using var ca = CertificateAuthority.CreateRoot("CN=Test Operator CA, O=Test", TimeSpan.FromDays(30), TimeProvider.System);
        var lifetime = TimeSpan.FromHours(24);
        var hints = new List<double>();
        for (var i = 0; i < 50; i++)
        {
            var before = DateTimeOffset.UtcNow;
            using var certificate = DeviceCertificates.IssueOperational(ca, "FC-1", lifetime, TimeProvider.System);
            var extension = certificate.Extensions[RenewalHint.Oid];
            Assert.NotNull(extension);
            Assert.False(extension.Critical); // a unit that does not know it still uses the certificate
            var hint = RenewalHint.Read(certificate)!.Value;
            var fraction = (hint - before) / lifetime;
            Assert.InRange(fraction, RenewalHint.Earliest - 0.001, RenewalHint.Latest + 0.001);
            Assert.Equal(hint, RenewalHint.RenewAt(certificate, before, new Random(1))); // the hint wins over the unit's own choice
            hints.Add(fraction);
        }

        Assert.True(hints.Max() - hints.Min() > 0.1, $"50 hints within {hints.Max() - hints.Min():P1} of the lifetime: not spread");

        // Without a hint (another CA's certificate), the unit picks a point of the same window itself.
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;
        using var plain = ca.Issue(new X500DistinguishedName("CN=FC-2"), new PublicKey(key), CertificateUsage.ClientAuth, now, now.AddHours(10));
        Assert.Null(RenewalHint.Read(plain));
        Assert.InRange((RenewalHint.RenewAt(plain, now, new Random(7)) - now).TotalHours, 4.99, 8.01);

        // A hint that does not decode is no hint.
        using var broken = ca.Issue(new X500DistinguishedName("CN=FC-3"), new PublicKey(key), CertificateUsage.ClientAuth, now, now.AddHours(10),
            extensions: [new X509Extension(RenewalHint.Oid, [0x04, 0x01, 0x00], false)]);
        Assert.Null(RenewalHint.Read(broken));
    }
}
