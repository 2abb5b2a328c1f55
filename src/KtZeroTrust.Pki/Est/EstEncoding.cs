using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;

namespace KtZeroTrust.Pki.Est;

/// <summary>The DER structures EST (RFC 7030) exchanges, built by hand where .NET has no builder.</summary>
public static class EstEncoding
{
    private const string SignedDataOid = "1.2.840.113549.1.7.2";
    private const string DataOid = "1.2.840.113549.1.7.1";
    public const string ChallengePasswordOid = "1.2.840.113549.1.9.7";

    /// <summary>
    /// A certs-only CMS SignedData (RFC 5652 section 5 with no signers, "degenerate" PKCS#7), what EST returns for
    /// cacerts and enrollments. SignedCms cannot encode one without a signer, so it is written directly.
    /// </summary>
    public static byte[] CertsOnly(IEnumerable<X509Certificate2> certificates)
    {
        ArgumentNullException.ThrowIfNull(certificates);
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            writer.WriteObjectIdentifier(SignedDataOid);
            using (writer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
            using (writer.PushSequence())
            {
                writer.WriteInteger(1); // version
                using (writer.PushSetOf())
                {
                    // digestAlgorithms: empty
                }

                using (writer.PushSequence())
                {
                    writer.WriteObjectIdentifier(DataOid); // encapContentInfo without content
                }

                using (writer.PushSetOf(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
                {
                    foreach (var certificate in certificates)
                    {
                        writer.WriteEncodedValue(certificate.RawData);
                    }
                }

                using (writer.PushSetOf())
                {
                    // signerInfos: none
                }
            }
        }

        return writer.Encode();
    }

    /// <summary>
    /// The csrattrs answer (RFC 7030 4.5.2): ask for a challengePassword (the attestation nonce) and an ECDSA P-256 key
    /// signed with SHA-256.
    /// </summary>
    public static byte[] CsrAttributes()
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            writer.WriteObjectIdentifier(ChallengePasswordOid);
            using (writer.PushSequence())
            {
                writer.WriteObjectIdentifier("1.2.840.10045.2.1"); // id-ecPublicKey
                using (writer.PushSetOf())
                {
                    writer.WriteObjectIdentifier("1.2.840.10045.3.1.7"); // secp256r1
                }
            }

            writer.WriteObjectIdentifier("1.2.840.10045.4.3.2"); // ecdsa-with-SHA256
        }

        return writer.Encode();
    }

    /// <summary>
    /// A PKCS#10 request for <paramref name="commonName"/> carrying <paramref name="challengePassword"/> (the attestation
    /// nonce), as an enrolling unit builds it.
    /// </summary>
    public static byte[] CreateCsr(string commonName, System.Security.Cryptography.ECDsa key, string? challengePassword)
    {
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest($"CN={commonName}", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
        if (challengePassword is not null)
        {
            var writer = new AsnWriter(AsnEncodingRules.DER);
            writer.WriteCharacterString(UniversalTagNumber.UTF8String, challengePassword);
            request.OtherRequestAttributes.Add(new System.Security.Cryptography.AsnEncodedData(ChallengePasswordOid, writer.Encode()));
        }

        return request.CreateSigningRequest();
    }

    /// <summary>The certificates of a certs-only response (what an EST client does with the answer).</summary>
    public static X509Certificate2Collection ReadCertsOnly(byte[] der)
    {
        var cms = new System.Security.Cryptography.Pkcs.SignedCms();
        cms.Decode(der);
        return cms.Certificates;
    }

    /// <summary>
    /// Base64 on one line. Line breaks are allowed by RFC 7030 but trip up real clients: strongSwan's EST client
    /// miscounts the decoded length across them, and coreutils base64 rejects CR.
    /// </summary>
    public static string ToBase64Lines(byte[] der) => Convert.ToBase64String(der);

    /// <summary>Decodes an EST base64 body (whitespace and line breaks allowed); null when it is not base64.</summary>
    public static byte[]? FromBase64(ReadOnlySpan<char> text)
    {
        var clean = new char[text.Length];
        var n = 0;
        foreach (var c in text)
        {
            if (!char.IsWhiteSpace(c))
            {
                clean[n++] = c;
            }
        }

        var buffer = new byte[(n * 3 / 4) + 3];
        return n > 0 && Convert.TryFromBase64Chars(clean.AsSpan(0, n), buffer, out var written) ? buffer[..written] : null;
    }
}
