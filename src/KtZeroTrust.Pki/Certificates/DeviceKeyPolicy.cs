using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KtZeroTrust.Pki.Certificates;

/// <summary>
/// The one key policy for device certificates: what enrollment accepts in a CSR is exactly what the gateway accepts in
/// a handshake (ECDSA on P-256 or P-384, an uncompressed point), so no unit is ever issued a certificate it cannot use.
/// </summary>
/// <remarks>
/// Read from the key's encoding, not by importing it: OpenSSL 3.0's SubjectPublicKeyInfo decoder cost 166 µs a key
/// (bench/README.md, CsrBenchmarks). Whether the point lies on the curve is checked where the key is used:
/// <see cref="Import"/> refuses a point off the curve, and the handshake's CertificateVerify is verified with it.
/// </remarks>
public static class DeviceKeyPolicy
{
    public const string Description = "ECDSA P-256 or P-384";
    private const string EcPublicKey = "1.2.840.10045.2.1";
    private const string P256 = "1.2.840.10045.3.1.7";
    private const string P384 = "1.3.132.0.34";

    /// <summary>Null when the key is allowed, otherwise why not (a sentence for the refusal's detail).</summary>
    public static string? Violation(PublicKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Oid.Value != EcPublicKey)
        {
            return $"Key algorithm {key.Oid.FriendlyName ?? key.Oid.Value} is not accepted: device keys are {Description}.";
        }

        // Named curves only: explicit parameters (a SEQUENCE, not an OID) could describe a weak curve under a familiar size.
        var curve = NamedCurve(key);
        if (CoordinateSize(curve) is not { } size)
        {
            return $"ECDSA keys must be on P-256 or P-384 (curve {curve ?? "explicit"} given).";
        }

        // .NET reads uncompressed points only (04 || X || Y): a compressed one could be neither imported nor used.
        var point = key.EncodedKeyValue.RawData;
        return point.Length == 1 + (2 * size) && point[0] == 0x04 ? null
            : "The key is a compressed (or malformed) EC point: device keys are sent as the uncompressed point (04 || X || Y).";
    }

    /// <summary>
    /// A key <see cref="Violation"/> admitted, as an ECDsa made from its point, without the decoder; throws
    /// <see cref="CryptographicException"/> for a point off the curve.
    /// </summary>
    public static ECDsa Import(PublicKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var size = CoordinateSize(NamedCurve(key)) ?? throw new CryptographicException("Not a key the device key policy admits.");
        var point = key.EncodedKeyValue.RawData;
        return ECDsa.Create(new ECParameters
        {
            Curve = size == 32 ? ECCurve.NamedCurves.nistP256 : ECCurve.NamedCurves.nistP384,
            Q = new ECPoint { X = point[1..(1 + size)], Y = point[(1 + size)..] },
        });
    }

    private static int? CoordinateSize(string? curve) => curve switch
    {
        P256 => 32,
        P384 => 48,
        _ => null,
    };

    /// <summary>The OID of the key's named curve, or null for explicit or unreadable parameters.</summary>
    private static string? NamedCurve(PublicKey key)
    {
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
