using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Pki.Issuance;
using KtZeroTrust.Pki.Manifests;

namespace KtZeroTrust.Server.Pki;

/// <summary>
/// Development first start: creates the development PKI when the directory is empty, imports its sample manifest and
/// issues each sample unit an operational certificate into <c>ldevid/</c>, so that the first command shows the whole
/// path. Never runs outside the Development environment.
/// </summary>
internal sealed partial class DevelopmentBootstrap(IDeviceRegistry registry, KtZeroTrust.Registry.Sql.SqlDeviceRegistry store, TimeProvider timeProvider, ILogger<DevelopmentBootstrap> logger)
{
    private const string Actor = "dev-bootstrap";
    private static readonly TimeSpan SampleLifetime = TimeSpan.FromDays(7);
    private static readonly TimeSpan RenewBefore = TimeSpan.FromHours(1);

    /// <summary>Creates the development PKI when the directory has none. Runs before the host (and its logging) exists.</summary>
    public static void EnsurePki(DevPkiLayout layout, TimeProvider timeProvider, TextWriter output)
    {
        if (layout.IsInitialized)
        {
            return;
        }

        var written = DevelopmentPki.Initialize(layout, force: false, timeProvider);
        output.WriteLine($"ktzerotrust: generated the DEVELOPMENT PKI in {layout.Directory} ({written.Count} files). Never use it outside development.");
    }

    public async Task EnsureSampleFleetAsync(DevPkiLayout layout, CancellationToken cancellationToken)
    {
        if (!File.Exists(layout.Manifest))
        {
            return;
        }

        if (File.Exists(layout.ReferenceValues))
        {
            await registry.ImportReferenceValuesAsync(ReferenceValuesFile.Load(layout.ReferenceValues), Actor, cancellationToken);
        }

        var manifest = ManufacturingManifest.Load(layout.Manifest);
        using var vendorRoot = File.Exists(layout.VendorRootCertificate) ? PemFiles.ReadCertificate(layout.VendorRootCertificate) : null;
        var result = await registry.ImportAsync(manifest.ResolveDevices(layout.Manifest, vendorRoot), Actor, cancellationToken);
        if (result.Imported.Count > 0)
        {
            LogImported(logger, result.Imported.Count, layout.Manifest);
        }

        using var ca = new CertificateAuthority(PemFiles.ReadCertificateWithKey(layout.OperatorCaCertificate, layout.OperatorCaKey));
        var issuer = new OperationalCertificateIssuer(ca, registry, timeProvider);
        foreach (var entry in manifest.Devices)
        {
            var device = await registry.FindAsync(entry.Serial, cancellationToken);
            if (device?.State is not (DeviceLifecycleState.Provisioned or DeviceLifecycleState.Active) || await HasCurrentCertificateAsync(layout, entry.Serial, cancellationToken))
            {
                continue;
            }

            using var certificate = await issuer.IssueAsync(entry.Serial, SampleLifetime, Actor, cancellationToken);
            using var key = certificate.GetECDsaPrivateKey()!;
            PemFiles.WritePrivateKey(layout.LDevIdKey(entry.Serial), key, overwrite: true);
            PemFiles.WriteCertificate(layout.LDevIdCertificate(entry.Serial), certificate, overwrite: true);
            LogIssued(logger, entry.Serial, layout.LDevIdCertificate(entry.Serial));
        }

        await BackfillPublicKeysAsync(layout, manifest, cancellationToken);
    }

    /// <summary>
    /// Sample certificates issued before the registry kept key hashes: their hashes are filled in from the files, so a
    /// CSR reusing such a key is refused as key_shared like any other.
    /// </summary>
    private async Task BackfillPublicKeysAsync(DevPkiLayout layout, ManufacturingManifest manifest, CancellationToken cancellationToken)
    {
        var certificates = new List<X509Certificate2>();
        try
        {
            foreach (var entry in manifest.Devices)
            {
                if (File.Exists(layout.LDevIdCertificate(entry.Serial)))
                {
                    certificates.Add(PemFiles.ReadCertificate(layout.LDevIdCertificate(entry.Serial)));
                }
            }

            var (filled, shared) = await store.BackfillPublicKeysAsync(certificates, cancellationToken);
            if (filled > 0)
            {
                LogBackfilled(logger, filled);
            }

            foreach (var key in shared)
            {
                LogSharedKey(logger, key);
            }
        }
        finally
        {
            certificates.ForEach(c => c.Dispose());
        }
    }

    [LoggerMessage(EventId = ServerEventIds.DevKeysBackfilled, Level = LogLevel.Information, Message = "Recorded the public-key hash of {Count} certificates issued before key hashes were kept")]
    private static partial void LogBackfilled(ILogger logger, int count);

    [LoggerMessage(EventId = ServerEventIds.SharedKeyFound, Level = LogLevel.Critical, Message = "Public key {PublicKeySha256} is bound to more than one device: a shared credential; revoke all but one")]
    private static partial void LogSharedKey(ILogger logger, string publicKeySha256);

    /// <summary>A sample certificate on disk that is still valid for a while and known to this registry (which may be a new one).</summary>
    private async Task<bool> HasCurrentCertificateAsync(DevPkiLayout layout, string serial, CancellationToken cancellationToken)
    {
        if (!File.Exists(layout.LDevIdCertificate(serial)) || !File.Exists(layout.LDevIdKey(serial)))
        {
            return false;
        }

        X509Certificate2 cert;
        try
        {
            cert = PemFiles.ReadCertificate(layout.LDevIdCertificate(serial));
        }
        catch (PkiException)
        {
            return false;
        }

        using (cert)
        {
            return cert.NotAfter.ToUniversalTime() - timeProvider.GetUtcNow().UtcDateTime > RenewBefore
                && await registry.FindAllowListEntryAsync(KtZeroTrust.Core.Certificates.CertificateHash.Of(cert), cancellationToken) is { CertificateRevoked: false };
        }
    }

    [LoggerMessage(EventId = ServerEventIds.DevManifestImported, Level = LogLevel.Information, Message = "Imported {Count} sample devices from {Manifest}")]
    private static partial void LogImported(ILogger logger, int count, string manifest);

    [LoggerMessage(EventId = ServerEventIds.DevCertificateIssued, Level = LogLevel.Information, Message = "Issued a development operational certificate for {Serial}: {Path}")]
    private static partial void LogIssued(ILogger logger, string serial, string path);
}
