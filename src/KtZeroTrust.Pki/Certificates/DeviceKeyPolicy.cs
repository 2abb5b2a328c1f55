using System.Security.Cryptography.X509Certificates;

namespace KtZeroTrust.Pki.Certificates;

/// <summary>
/// The one key policy for device certificates: what enrollment accepts in a CSR is exactly what the gateway accepts in
/// a handshake (ECDSA on P-256 or P-384), so no unit is ever issued a certificate it cannot use.
/// </summary>
public static class DeviceKeyPolicy
{
    public const string Description = "ECDSA P-256 or P-384";
    private const string P256 = "1.2.840.10045.3.1.7";
    private const string P384 = "1.3.132.0.34";

    /// <summary>Null when the key is allowed, otherwise why not (a sentence for the refusal's detail).</summary>
    public static string? Violation(PublicKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        using var ec = key.GetECDsaPublicKey();
        if (ec is null)
        {
            return $"Key algorithm {key.Oid.FriendlyName ?? key.Oid.Value} is not accepted: device keys are {Description}.";
        }

        // Named curves only: explicit parameters could describe a weak curve under a familiar size.
        var curve = ec.ExportParameters(false).Curve;
        return curve.IsNamed && curve.Oid.Value is P256 or P384 ? null
            : $"ECDSA keys must be on P-256 or P-384 (curve {curve.Oid.Value ?? curve.Oid.FriendlyName ?? "explicit"} given).";
    }
}
