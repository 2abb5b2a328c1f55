using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;

namespace KtZeroTrust.Pki.Manifests;

/// <summary>
/// A manufacturer's manifest of units: serial, model, install site and the factory identity (IDevID)
/// certificate, given as a PEM path relative to the manifest.
/// </summary>
public sealed record ManufacturingManifest
{
    public string? Vendor { get; init; }
    public IReadOnlyList<ManifestEntry> Devices { get; init; } = [];

    /// <summary>Loads and validates a manifest; errors name the file and the offending entry.</summary>
    public static ManufacturingManifest Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new PkiException(PkiException.MissingFile, $"Manifest '{path}' does not exist.");
        }

        ManufacturingManifest? manifest;
        try
        {
            using var stream = File.OpenRead(path);
            manifest = JsonSerializer.Deserialize(stream, ManifestJsonContext.Default.ManufacturingManifest);
        }
        catch (JsonException ex)
        {
            throw new PkiException(PkiException.InvalidManifest, $"Manifest '{path}' is not valid JSON: {ex.Message}", ex);
        }

        if (manifest is null || manifest.Devices.Count == 0)
        {
            throw new PkiException(PkiException.InvalidManifest, $"Manifest '{path}' lists no devices.");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < manifest.Devices.Count; i++)
        {
            var d = manifest.Devices[i];
            if (!DeviceSerial.IsValid(d.Serial))
            {
                throw new PkiException(PkiException.InvalidManifest, $"Manifest '{path}', device #{i + 1}: invalid serial '{d.Serial}'.");
            }

            if (string.IsNullOrWhiteSpace(d.Model))
            {
                throw new PkiException(PkiException.InvalidManifest, $"Manifest '{path}', device '{d.Serial}': model is required.");
            }

            if (!seen.Add(d.Serial))
            {
                throw new PkiException(PkiException.InvalidManifest, $"Manifest '{path}': serial '{d.Serial}' is listed twice.");
            }
        }

        return manifest;
    }

    /// <summary>
    /// The devices to import. Each IDevID certificate that the manifest names must exist, name the same
    /// serial and chain to <paramref name="vendorRoot"/> when one is given; one key under two serials is refused
    /// (a fleet-wide credential).
    /// </summary>
    public IReadOnlyList<ManifestDevice> ResolveDevices(string manifestPath, X509Certificate2? vendorRoot)
    {
        var baseDirectory = Path.GetDirectoryName(Path.GetFullPath(manifestPath))!;
        var result = new List<ManifestDevice>(Devices.Count);
        var keys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var d in Devices)
        {
            string? hash = null;
            if (!string.IsNullOrEmpty(d.IDevIdCertificate))
            {
                using var cert = PemFiles.ReadCertificate(Path.Combine(baseDirectory, d.IDevIdCertificate));
                var named = DeviceCertificates.SerialOf(cert);
                if (!string.Equals(named, d.Serial, StringComparison.Ordinal))
                {
                    throw new PkiException(PkiException.InvalidManifest, $"Device '{d.Serial}': its IDevID certificate names serial '{named}'.");
                }

                if (vendorRoot is not null && !TrustPolicies.ChainsTo(cert, vendorRoot))
                {
                    throw new PkiException(PkiException.InvalidManifest, $"Device '{d.Serial}': its IDevID certificate does not chain to the vendor root '{vendorRoot.Subject}'.");
                }

                var key = Convert.ToHexString(cert.PublicKey.EncodedKeyValue.RawData);
                if (!keys.TryAdd(key, d.Serial))
                {
                    throw new PkiException(PkiException.InvalidManifest, $"Devices '{keys[key]}' and '{d.Serial}' share one public key: a fleet-wide credential is refused.");
                }

                hash = CertificateHash.Of(cert).ToString();
            }

            result.Add(new ManifestDevice { Serial = d.Serial, Model = d.Model, Site = d.Site, IDevIdSha256 = hash });
        }

        return result;
    }
}

public sealed record ManifestEntry
{
    public string Serial { get; init; } = "";
    public string Model { get; init; } = "";
    public string? Site { get; init; }

    /// <summary>Path of the IDevID certificate PEM, relative to the manifest.</summary>
    [JsonPropertyName("idevidCertificate")]
    public string? IDevIdCertificate { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(ManufacturingManifest))]
[JsonSerializable(typeof(KtZeroTrust.Core.Attestation.ReferenceValues))]
internal sealed partial class ManifestJsonContext : JsonSerializerContext;
