using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;

namespace KtZeroTrust.Cli.Simulation;

/// <summary>
/// Synthetic units for the simulator: factory identities minted with the development vendor root, kept under
/// <c>&lt;pki&gt;/simulated/</c> so reruns reuse them, and imported into the registry at a site of the reference values.
/// The sample fleet of certs-dev is never touched (rogue scenarios decommission units).
/// </summary>
internal static class SimulatedFleet
{
    public static async Task<List<(string Serial, string Model, string Site, X509Certificate2 Factory)>> EnsureAsync(
        DevPkiLayout layout, ReferenceValues reference, IDeviceRegistry registry, string prefix, int count, CancellationToken ct)
    {
        var model = reference.Firmware.Select(f => f.Model).FirstOrDefault()
            ?? throw new InvalidOperationException($"The reference values ({layout.ReferenceValues}) list no firmware: the simulator cannot build honest evidence.");
        if (reference.Sites.Count == 0)
        {
            throw new InvalidOperationException($"The reference values ({layout.ReferenceValues}) list no sites.");
        }

        var directory = Path.Combine(layout.Directory, "simulated");
        Directory.CreateDirectory(directory);
        using var vendor = new CertificateAuthority(PemFiles.ReadCertificateWithKey(layout.VendorRootCertificate, layout.VendorRootKey));
        var units = new List<(string, string, string, X509Certificate2)>(count);
        var toImport = new List<ManifestDevice>();
        for (var i = 1; i <= count; i++)
        {
            var serial = $"{prefix}-{i:D4}";
            var certPath = Path.Combine(directory, serial + ".pem");
            var keyPath = Path.Combine(directory, serial + ".key.pem");
            if (!File.Exists(certPath) || !File.Exists(keyPath))
            {
                using var minted = vendor.IssueWithNewKey(DeviceCertificates.Subject(serial, "Simulated Femto Manufacturer"), CertificateUsage.ClientAuth,
                    DateTimeOffset.UtcNow.AddDays(-1), vendor.Certificate.NotAfter.ToUniversalTime().AddDays(-1), uri: DeviceCertificates.DeviceUri(serial));
                using var key = minted.GetECDsaPrivateKey()!;
                PemFiles.WritePrivateKey(keyPath, key, overwrite: true);
                PemFiles.WriteCertificate(certPath, minted, overwrite: true);
            }

            var factory = PemFiles.ReadCertificateWithKey(certPath, keyPath);
            var site = reference.Sites[(i - 1) % reference.Sites.Count].Id;
            units.Add((serial, model, site, factory));
            toImport.Add(new ManifestDevice { Serial = serial, Model = model, Site = site, IDevIdSha256 = CertificateHash.Of(factory).ToString() });
        }

        await registry.ImportAsync(toImport, "ztctl:simulate", ct);
        return units;
    }

    /// <summary>A vendor-signed factory identity for a serial the registry has never heard of.</summary>
    public static X509Certificate2 Stranger(DevPkiLayout layout, string serial)
    {
        using var vendor = new CertificateAuthority(PemFiles.ReadCertificateWithKey(layout.VendorRootCertificate, layout.VendorRootKey));
        return vendor.IssueWithNewKey(DeviceCertificates.Subject(serial, "Simulated Femto Manufacturer"), CertificateUsage.ClientAuth,
            DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), uri: DeviceCertificates.DeviceUri(serial));
    }
}
