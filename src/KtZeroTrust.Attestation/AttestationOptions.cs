namespace KtZeroTrust.Attestation;

/// <summary>Attestation and enrollment settings. Bound from <c>ZeroTrust:Attestation</c>.</summary>
public sealed class AttestationOptions
{
    public const string SectionName = "ZeroTrust:Attestation";

    /// <summary>How long a nonce may wait for its evidence. Default 2 minutes.</summary>
    public TimeSpan NonceLifetime { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Largest difference between the evidence's time and ours. Default 5 minutes.</summary>
    public TimeSpan MaxClockSkew { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a passing attestation (and its enrollment token) can be used to enroll. Default 10 minutes.</summary>
    public TimeSpan EnrollmentWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Lifetime of issued operational certificates. Default 24 hours; never beyond 30 days.</summary>
    public TimeSpan CertificateLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Where the CRL is published (goes into every certificate). Default: the enrollment listener's <c>/crl/operator-ca.crl</c>.</summary>
    public string? CrlUrl { get; set; }

    /// <summary>The OCSP responder's URL (goes into every certificate's AIA). Default: the enrollment listener's <c>/ocsp</c>.</summary>
    public string? OcspUrl { get; set; }

    /// <summary>
    /// How long a client may keep an OCSP answer (its nextUpdate). Default 2 s: a client that caches (strongSwan does,
    /// for 30 s when there is no nextUpdate) asks again within 2 s of a revocation. Zero: no nextUpdate at all.
    /// </summary>
    public TimeSpan OcspValidity { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Redis for nonces (shared by several attestation nodes); default the allow list's Redis, else in process.</summary>
    public string? Redis { get; set; }

    /// <summary>Largest request body on the enrollment endpoints. Default 64 KiB.</summary>
    public int MaxBodyBytes { get; set; } = 64 * 1024;

    /// <summary>Most nonces held in process at once. Default 100,000.</summary>
    public int MaxPendingNonces { get; set; } = 100_000;

    /// <summary>Admission control of appraisals and enrollments (<see cref="Admission.EnrollmentAdmission"/>).</summary>
    public Admission.AdmissionOptions Admission { get; set; } = new();
}
