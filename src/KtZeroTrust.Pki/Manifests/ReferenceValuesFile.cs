using System.Text.Json;
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Pki.Certificates;

namespace KtZeroTrust.Pki.Manifests;

/// <summary>Reads the reference-values file: <c>{ "sites": [...], "firmware": [...], "models": [...] }</c> (see docs/attestation.md).</summary>
public static class ReferenceValuesFile
{
    public static ReferenceValues Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new PkiException(PkiException.MissingFile, $"Reference values '{path}' do not exist.");
        }

        try
        {
            using var stream = File.OpenRead(path);
            return JsonSerializer.Deserialize(stream, ManifestJsonContext.Default.ReferenceValues)
                ?? throw new PkiException(PkiException.InvalidManifest, $"Reference values '{path}' are empty.");
        }
        catch (JsonException ex)
        {
            throw new PkiException(PkiException.InvalidManifest, $"Reference values '{path}' are not valid: {ex.Message}", ex);
        }
    }
}
