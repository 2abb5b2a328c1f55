using System.Net;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.Manifests;

namespace KtZeroTrust.Pki.DevPki;

/// <summary>
/// Generates the development PKI: a vendor root signing IDevIDs (standing in for manufacturers), the operator
/// device CA issuing LDevIDs, a TLS root and a localhost server certificate, and one IDevID per manifest device.
/// Every subject carries <see cref="DevPkiLayout.DevelopmentMarker"/> so production start can refuse them.
/// </summary>
public static class DevelopmentPki
{
    private static readonly TimeSpan CaLifetime = TimeSpan.FromDays(3650);
    private static readonly TimeSpan ServerLifetime = TimeSpan.FromDays(365);
    private static readonly TimeSpan IDevIdLifetime = TimeSpan.FromDays(3000);

    /// <summary>Creates what is missing (or everything, with <paramref name="force"/>). Returns the files written.</summary>
    public static IReadOnlyList<string> Initialize(DevPkiLayout layout, bool force, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (!force && (File.Exists(layout.OperatorCaKey) || File.Exists(layout.VendorRootKey) || File.Exists(layout.ServerKey)))
        {
            throw new PkiException(PkiException.WouldOverwrite, $"A PKI already exists in '{layout.Directory}'; pass --force to replace it (every issued certificate stops working).");
        }

        Directory.CreateDirectory(layout.Directory);
        var written = new List<string>();
        try
        {
            Generate(layout, force, timeProvider, written);
        }
        catch
        {
            // Leave no half-made PKI behind: a later start would refuse to overwrite it.
            foreach (var path in written)
            {
                File.Delete(path);
            }

            throw;
        }

        return written;
    }

    private static void Generate(DevPkiLayout layout, bool force, TimeProvider timeProvider, List<string> written)
    {        var now = timeProvider.GetUtcNow();

        using var vendor = CertificateAuthority.CreateRoot($"CN=Femto Vendor Root (dev), OU={DevPkiLayout.DevelopmentMarker}, O=Example Femto Manufacturer", CaLifetime, timeProvider);
        using var operatorCa = CertificateAuthority.CreateRoot($"CN=KtZeroTrust Operator Device CA (dev), OU={DevPkiLayout.DevelopmentMarker}, O=KtZeroTrust Operator", CaLifetime, timeProvider);
        using var tlsRoot = CertificateAuthority.CreateRoot($"CN=KtZeroTrust TLS Root (dev), OU={DevPkiLayout.DevelopmentMarker}, O=KtZeroTrust Operator", CaLifetime, timeProvider);
        Save(layout.VendorRootCertificate, layout.VendorRootKey, vendor.Certificate, force, written);
        Save(layout.OperatorCaCertificate, layout.OperatorCaKey, operatorCa.Certificate, force, written);
        Save(layout.TlsRootCertificate, layout.TlsRootKey, tlsRoot.Certificate, force, written);

        using (var server = tlsRoot.IssueWithNewKey(
            new X500DistinguishedName($"CN=localhost, OU={DevPkiLayout.DevelopmentMarker}, O=KtZeroTrust Operator"),
            CertificateUsage.ServerAuth, now.AddMinutes(-5), now.Add(ServerLifetime),
            dnsNames: ["localhost"], ipAddresses: [IPAddress.Loopback, IPAddress.IPv6Loopback]))
        {
            Save(layout.ServerCertificate, layout.ServerKey, server, force, written);
        }

        if (File.Exists(layout.Manifest))
        {
            var manifest = ManufacturingManifest.Load(layout.Manifest);
            foreach (var device in manifest.Devices)
            {
                var subject = new X500DistinguishedNameBuilder();
                subject.AddOrganizationName("Example Femto Manufacturer");
                subject.AddOrganizationalUnitName(DevPkiLayout.DevelopmentMarker);
                subject.Add("2.5.4.5", device.Serial, System.Formats.Asn1.UniversalTagNumber.PrintableString);
                subject.AddCommonName($"{device.Model} {device.Serial}");
                using var idevid = vendor.IssueWithNewKey(subject.Build(), CertificateUsage.ClientAuth,
                    now.AddMinutes(-5), now.Add(IDevIdLifetime), uri: DeviceCertificates.DeviceUri(device.Serial));
                Save(layout.IDevIdCertificate(device.Serial), layout.IDevIdKey(device.Serial), idevid, force, written);
            }
        }
    }

    /// <summary>True for certificates this class generated (their subject or issuer carries the development marker).</summary>
    public static bool IsDevelopmentCertificate(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return certificate.Subject.Contains(DevPkiLayout.DevelopmentMarker, StringComparison.Ordinal)
            || certificate.Issuer.Contains(DevPkiLayout.DevelopmentMarker, StringComparison.Ordinal);
    }

    private static void Save(string certPath, string keyPath, X509Certificate2 cert, bool force, List<string> written)
    {
        using var key = cert.GetECDsaPrivateKey()!;
        PemFiles.WritePrivateKey(keyPath, key, force);
        PemFiles.WriteCertificate(certPath, cert, force);
        written.Add(certPath);
        written.Add(keyPath);
    }
}
