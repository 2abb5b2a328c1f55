using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;

namespace KtZeroTrust.Pki.Certificates;

/// <summary>
/// The one key policy for device certificates: what enrollment accepts in a CSR is exactly what the gateway accepts in
/// a handshake (ECDSA on P-256 or P-384), so no unit is ever issued a certificate it cannot use.
/// </summary>
public static class DeviceKeyPolicy
{
    public const string Description = "ECDSA P-256 or P-384";
    public const string EcPublicKey = "1.2.840.10045.2.1";
    public const string P256 = "1.2.840.10045.3.1.7";
    public const string P384 = "1.3.132.0.34";

    /// <summary>Null when the key is allowed, otherwise why not (a sentence for the refusal's detail).</summary>
    /// <remarks>
    /// Read from the key's algorithm identifier, not by importing the key: OpenSSL 3.0's decoder cost 166 µs a key
    /// (bench/README.md, CsrBenchmarks). Whether the point lies on the curve is checked where the key is used: the CSR's
    /// signature and the handshake's CertificateVerify are verified with it.
    /// </remarks>
    public static string? Violation(PublicKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Oid.Value != EcPublicKey)
        {
            return $"Key algorithm {key.Oid.FriendlyName ?? key.Oid.Value} is not accepted: device keys are {Description}.";
        }

        // Named curves only: explicit parameters (a SEQUENCE, not an OID) could describe a weak curve under a familiar size.
        var curve = NamedCurve(key);
        return curve is P256 or P384 ? null : $"ECDSA keys must be on P-256 or P-384 (curve {curve ?? "explicit"} given).";
    }

    /// <summary>The OID of the key's named curve, or null for explicit or unreadable parameters.</summary>
    public static string? NamedCurve(PublicKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.EncodedParameters is not { } parameters)
        {
            return null;
        }

        try
        {
            var reader = new AsnReader(parameters.RawData, AsnEncodingRules.DER);
            var oid = reader.ReadObjectIdentifier();
            return reader.HasData ? null : oid;
        }
        catch (AsnContentException)
        {
            return null;
        }
    }
}
