using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Pki.Certificates;

namespace KtZeroTrust.Tests.Common;

/// <summary>Builds the certificates the security grids need: look-alikes, expired, wrong usage, over-long lifetime.</summary>
public static class TestCertificates
{
    public static CertificateAuthority CreateCa(string subject = "CN=Test CA, O=Test")
        => CertificateAuthority.CreateRoot(subject, TimeSpan.FromDays(3650), TimeProvider.System);

    /// <summary>A device certificate with full control over validity and usage.</summary>
    public static X509Certificate2 Device(CertificateAuthority ca, string serial, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null,
        CertificateUsage usage = CertificateUsage.ClientAuth)
    {
        var now = DateTimeOffset.UtcNow;
        return ca.IssueWithNewKey(DeviceCertificates.Subject(serial, "KtZeroTrust Operator"), usage,
            notBefore ?? now.AddMinutes(-5), notAfter ?? now.AddDays(1), uri: DeviceCertificates.DeviceUri(serial));
    }

    /// <summary>A self-signed certificate with exactly the subject and SAN of <paramref name="original"/>.</summary>
    public static X509Certificate2 SelfSignedLookAlike(X509Certificate2 original)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(original.SubjectName, key, HashAlgorithmName.SHA256);
        foreach (var extension in original.Extensions)
        {
            if (extension is not (X509AuthorityKeyIdentifierExtension or X509SubjectKeyIdentifierExtension))
            {
                request.CertificateExtensions.Add(extension);
            }
        }

        return request.CreateSelfSigned(original.NotBefore, original.NotAfter);
    }

    /// <summary>Writes a certificate and its key as PEM files (for curl and openssl).</summary>
    public static (string Certificate, string Key) WritePem(X509Certificate2 certificate, string directory, string name)
    {
        var certPath = Path.Combine(directory, name + ".pem");
        var keyPath = Path.Combine(directory, name + ".key.pem");
        using var key = certificate.GetECDsaPrivateKey()!;
        PemFiles.WritePrivateKey(keyPath, key, overwrite: true);
        PemFiles.WriteCertificate(certPath, certificate, overwrite: true);
        return (certPath, keyPath);
    }
}
