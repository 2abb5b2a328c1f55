using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization;
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Pki.Certificates;

namespace KtZeroTrust.Pki.Attestation;

/// <summary>The claim set a unit signs (docs/attestation.md is the normative description).</summary>
public sealed record EvidenceClaims
{
    public required string Serial { get; init; }
    public required string Nonce { get; init; }
    public required FirmwareClaim Firmware { get; init; }

    /// <summary>Configuration flags, e.g. <c>ssh_enabled</c>, <c>debug_enabled</c>.</summary>
    public IReadOnlyDictionary<string, bool> Config { get; init; } = new Dictionary<string, bool>();
    public LocationClaim? Location { get; init; }
    public IReadOnlyList<string> NeighbourCells { get; init; } = [];
    public long BootCounter { get; init; }
    public required DateTimeOffset Time { get; init; }
}

public sealed record FirmwareClaim(string Version, string Sha256);

public sealed record LocationClaim(double Latitude, double Longitude);

/// <summary>Evidence whose signature verified, with the certificate that signed it.</summary>
public sealed record SignedEvidence(EvidenceClaims Claims, X509Certificate2 Signer);

/// <summary>Reads and writes evidence: a CMS SignedData, signed with the unit's IDevID key, over the UTF-8 JSON claims.</summary>
public static class Evidence
{
    /// <summary>Largest evidence accepted (bytes of DER).</summary>
    public const int MaxSize = 64 * 1024;

    /// <summary>
    /// Verifies the CMS signature and that the signer chains to one of <paramref name="vendorRoots"/>, then parses the
    /// claims. Throws <see cref="EnrollmentException"/> with the reason when any of it fails.
    /// </summary>
    public static SignedEvidence Read(byte[] cms, X509Certificate2Collection vendorRoots)
        => Read(cms, (signer, intermediates) => vendorRoots.Cast<X509Certificate2>().Any(root => ChainsTo(signer, root, intermediates)));

    /// <summary>As <see cref="Read(byte[], X509Certificate2Collection)"/>, with the caller's (cached) trust decision for the signer.</summary>
    public static SignedEvidence Read(byte[] cms, Func<X509Certificate2, X509Certificate2Collection, bool> signerTrusted)
    {
        ArgumentNullException.ThrowIfNull(cms);
        ArgumentNullException.ThrowIfNull(signerTrusted);
        var signed = new SignedCms();
        try
        {
            signed.Decode(cms);
        }
        catch (CryptographicException ex)
        {
            throw new EnrollmentException(ReasonCode.EvidenceMalformed, $"The evidence is not a CMS SignedData: {ex.Message}");
        }

        if (signed.Detached || signed.SignerInfos.Count != 1 || signed.ContentInfo.Content.Length == 0)
        {
            throw new EnrollmentException(ReasonCode.EvidenceMalformed, "The evidence must carry its claims (attached content) and exactly one signer.");
        }

        var signerInfo = signed.SignerInfos[0];
        var signer = signerInfo.Certificate
            ?? throw new EnrollmentException(ReasonCode.EvidenceMalformed, "The evidence does not include its signer's certificate.");
        try
        {
            signerInfo.CheckSignature(verifySignatureOnly: true);
        }
        catch (CryptographicException)
        {
            throw new EnrollmentException(ReasonCode.EvidenceSignatureInvalid, "The evidence signature does not verify.", 403);
        }

        var intermediates = new X509Certificate2Collection();
        intermediates.AddRange(signed.Certificates);
        if (!signerTrusted(signer, intermediates))
        {
            throw new EnrollmentException(ReasonCode.EvidenceSignerUntrusted, $"The evidence signer '{signer.Subject}' does not chain to a trusted vendor root.", 403);
        }

        EvidenceClaims? claims;
        try
        {
            claims = JsonSerializer.Deserialize(signed.ContentInfo.Content, EvidenceJsonContext.Default.EvidenceClaims);
        }
        catch (JsonException ex)
        {
            throw new EnrollmentException(ReasonCode.EvidenceMalformed, $"The evidence claims are not valid JSON: {ex.Message}");
        }

        if (claims is null || string.IsNullOrEmpty(claims.Serial) || string.IsNullOrEmpty(claims.Nonce) || claims.Firmware is null)
        {
            throw new EnrollmentException(ReasonCode.EvidenceMalformed, "The evidence claims need serial, nonce, firmware and time.");
        }

        return new SignedEvidence(claims, signer);
    }

    /// <summary>What a unit does: signs its claims with its IDevID key (the certificate must carry the private key).</summary>
    public static byte[] Create(EvidenceClaims claims, X509Certificate2 signer)
    {
        var content = JsonSerializer.SerializeToUtf8Bytes(claims, EvidenceJsonContext.Default.EvidenceClaims);
        var cms = new SignedCms(new ContentInfo(content), detached: false);
        cms.ComputeSignature(new CmsSigner(SubjectIdentifierType.IssuerAndSerialNumber, signer) { IncludeOption = X509IncludeOption.EndCertOnly });
        return cms.Encode();
    }

    private static bool ChainsTo(X509Certificate2 certificate, X509Certificate2 root, X509Certificate2Collection intermediates)
    {
        using var chain = new X509Chain { ChainPolicy = TrustPolicies.CustomRoots(new X509Certificate2Collection(root)) };
        chain.ChainPolicy.ExtraStore.AddRange(intermediates);
        return chain.Build(certificate);
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(EvidenceClaims))]
internal sealed partial class EvidenceJsonContext : JsonSerializerContext;
