namespace KtZeroTrust.Core.Attestation;

/// <summary>
/// One appraisal of a unit's evidence, as stored. A passing one carries a single-use enrollment token (stored hashed)
/// and can be consumed once by an enrollment whose CSR challengePassword is its nonce, before it expires.
/// </summary>
public sealed record AttestationRecord
{
    public required string Id { get; init; }
    public required string Serial { get; init; }
    public required string Nonce { get; init; }
    public required bool Passed { get; init; }

    /// <summary>Wire names of every failed check; empty when passed.</summary>
    public IReadOnlyList<string> Reasons { get; init; } = [];
    public string? FirmwareVersion { get; init; }
    public long? BootCounter { get; init; }
    public double? Latitude { get; init; }
    public double? Longitude { get; init; }
    public string? SourceAddress { get; init; }

    /// <summary>SHA-256 (hex) of the TLS client certificate the evidence came with (IDevID, or the LDevID for renewal).</summary>
    public string? ClientCertificateSha256 { get; init; }
    public string? EnrollmentTokenSha256 { get; init; }
    public required DateTimeOffset At { get; init; }
    public required DateTimeOffset ExpiresAt { get; init; }
    public DateTimeOffset? UsedAt { get; init; }
}

/// <summary>What an enrollment commits in one transaction.</summary>
public sealed record EnrollmentCommit
{
    public required string AttestationId { get; init; }
    public required Devices.DeviceCertificateRecord Certificate { get; init; }
}

/// <summary>A revoked (or superseded) operational certificate, for the CRL.</summary>
public sealed record RevokedCertificate(string SerialNumber, DateTimeOffset RevokedAt, string Reason);
