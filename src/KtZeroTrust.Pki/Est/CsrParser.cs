using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Core.Decisions;

using KtZeroTrust.Pki.Certificates;

namespace KtZeroTrust.Pki.Est;

/// <summary>A PKCS#10 request that parsed, whose signature verified and whose key meets policy.</summary>
public sealed record ParsedCsr(CertificateRequest Request, string? ChallengePassword, string PublicKeySha256, string? SubjectSerial);

/// <summary>
/// Reads EST enrollment requests. Only the key and the challengePassword are taken from a CSR: subject and SAN of the
/// issued certificate come from the registry, never from the request.
/// </summary>
public static class CsrParser
{
    public static ParsedCsr Parse(byte[] der)
    {
        ArgumentNullException.ThrowIfNull(der);
        CertificateRequest request;
        try
        {
            request = CertificateRequest.LoadSigningRequest(der, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.SkipSignatureValidation | CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        }
        catch (Exception ex) when (ex is CryptographicException or AsnContentException or ArgumentException)
        {
            throw new EnrollmentException(ReasonCode.CsrMalformed, $"The body is not a PKCS#10 certificate request: {ex.Message}");
        }

        CheckKey(request.PublicKey);
        if (!SignatureVerifies(der, request.PublicKey))
        {
            throw new EnrollmentException(ReasonCode.CsrSignatureInvalid, "The certificate request's signature does not verify.");
        }

        string? challenge = null;
        foreach (var attribute in request.OtherRequestAttributes)
        {
            if (attribute.Oid?.Value == EstEncoding.ChallengePasswordOid)
            {
                challenge = ReadDirectoryString(attribute.RawData);
            }
        }

        var spki = KtZeroTrust.Core.Certificates.PublicKeyHash.Hex(request.PublicKey);
        return new ParsedCsr(request, challenge, spki, SerialNamedIn(request.SubjectName));
    }

    /// <summary>
    /// The CSR's ECDSA signature over its CertificationRequestInfo, with the key the policy admitted imported from its
    /// point (<see cref="DeviceKeyPolicy.Import"/>): LoadSigningRequest's own check goes through OpenSSL 3.0's decoder,
    /// which cost more than the verification itself (bench/README.md, CsrBenchmarks). A point off the curve fails.
    /// </summary>
    private static bool SignatureVerifies(byte[] der, PublicKey key)
    {
        try
        {
            var outer = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
            var info = outer.ReadEncodedValue();
            var hash = outer.ReadSequence().ReadObjectIdentifier() switch
            {
                "1.2.840.10045.4.3.2" => HashAlgorithmName.SHA256,
                "1.2.840.10045.4.3.3" => HashAlgorithmName.SHA384,
                "1.2.840.10045.4.3.4" => HashAlgorithmName.SHA512,
                _ => default,
            };
            var signature = outer.ReadBitString(out var unused);
            if (hash == default || unused != 0)
            {
                return false; // not ECDSA with SHA-2
            }

            using var ecdsa = DeviceKeyPolicy.Import(key);
            return ecdsa.VerifyData(info.Span, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
        }
        catch (Exception ex) when (ex is CryptographicException or AsnContentException)
        {
            return false;
        }
    }

    /// <summary>The device serial a requested subject names: its serialNumber attribute, or else its common name.</summary>
    public static string? SerialNamedIn(X500DistinguishedName subject)
    {
        ArgumentNullException.ThrowIfNull(subject);
        var single = subject.EnumerateRelativeDistinguishedNames().Where(r => !r.HasMultipleElements).ToList();
        return single.FirstOrDefault(r => r.GetSingleElementType().Value is "2.5.4.5")?.GetSingleElementValue()
            ?? single.FirstOrDefault(r => r.GetSingleElementType().Value is "2.5.4.3")?.GetSingleElementValue();
    }

    /// <summary>The device key policy (<see cref="DeviceKeyPolicy"/>), the same one the gateway applies.</summary>
    public static void CheckKey(PublicKey key)
    {
        if (DeviceKeyPolicy.Violation(key) is { } violation)
        {
            throw new EnrollmentException(ReasonCode.KeyPolicyViolation, violation);
        }
    }

    private static string? ReadDirectoryString(byte[] attributeValue)
    {
        // The attribute values arrive as the encoded value: a DirectoryString (PrintableString, UTF8String, ...).
        try
        {
            var reader = new AsnReader(attributeValue, AsnEncodingRules.BER);
            if (reader.PeekTag().HasSameClassAndValue(Asn1Tag.SetOf))
            {
                reader = reader.ReadSetOf();
            }

            var tag = reader.PeekTag();
            return tag.TagValue switch
            {
                (int)UniversalTagNumber.PrintableString => reader.ReadCharacterString(UniversalTagNumber.PrintableString),
                (int)UniversalTagNumber.UTF8String => reader.ReadCharacterString(UniversalTagNumber.UTF8String),
                (int)UniversalTagNumber.IA5String => reader.ReadCharacterString(UniversalTagNumber.IA5String),
                (int)UniversalTagNumber.T61String => reader.ReadCharacterString(UniversalTagNumber.T61String),
                _ => null,
            };
        }
        catch (AsnContentException)
        {
            throw new EnrollmentException(ReasonCode.CsrMalformed, "The challengePassword attribute is not a DirectoryString.");
        }
    }
}
