namespace KtZeroTrust.Core.Decisions;

/// <summary>Why a decision came out as it did. The wire names (<see cref="ReasonCodes.Name"/>) are stable.</summary>
public enum ReasonCode
{
    Allowed = 0,
    CertificateMissing,
    CertificateUntrusted,
    CertificatePolicyViolation,
    CertificateExpired,
    CertificateRevoked,
    DeviceUnknown,
    DeviceNotEnrolled,
    DeviceSuspended,
    DeviceRevoked,
    DeviceDecommissioned,
    RouteNotAllowed,
    AllowListStale,
    AllowListUnavailable,
    EvidenceMalformed,
    EvidenceSignatureInvalid,
    EvidenceSignerUntrusted,
    IdentityMismatch,
    DeviceNotEnrollable,
    NonceInvalid,
    EvidenceStale,
    FirmwareUnknown,
    FirmwareRollback,
    ConfigurationForbidden,
    LocationOutsideSite,
    NeighbourCellsMismatch,
    SiteUnknown,
    ClientCertificateRequired,
    AttestationRequired,
    EnrollmentTokenInvalid,
    CsrMalformed,
    CsrSignatureInvalid,
    CsrIdentityMismatch,
    KeyPolicyViolation,
    KeyShared,
    UnsupportedMediaType,
    PayloadTooLarge,
    CloneSuspected,
    DeviceIdle,
    SourceOutsidePrefixes,
    LocationDrift,
    DenialBurst,
    DecisionsLost,
    DecisionSpoolGrowing,
    LifecycleTransition,
}

public enum DecisionOutcome
{
    Allow,
    Deny,
}

public static class ReasonCodes
{
    /// <summary>Parses a wire name back (stored attestation results carry names).</summary>
    public static bool TryParse(string name, out ReasonCode code)
    {
        foreach (var candidate in Enum.GetValues<ReasonCode>())
        {
            if (Name(candidate) == name)
            {
                code = candidate;
                return true;
            }
        }

        code = default;
        return false;
    }

    /// <summary>The stable wire name: logs, problem details and SIEM rules refer to it.</summary>
    public static string Name(ReasonCode code) => code switch
    {
        ReasonCode.Allowed => "allowed",
        ReasonCode.CertificateMissing => "certificate_missing",
        ReasonCode.CertificateUntrusted => "certificate_untrusted",
        ReasonCode.CertificatePolicyViolation => "certificate_policy_violation",
        ReasonCode.CertificateExpired => "certificate_expired",
        ReasonCode.CertificateRevoked => "certificate_revoked",
        ReasonCode.DeviceUnknown => "device_unknown",
        ReasonCode.DeviceNotEnrolled => "device_not_enrolled",
        ReasonCode.DeviceSuspended => "device_suspended",
        ReasonCode.DeviceRevoked => "device_revoked",
        ReasonCode.DeviceDecommissioned => "device_decommissioned",
        ReasonCode.RouteNotAllowed => "route_not_allowed",
        ReasonCode.AllowListStale => "allow_list_stale",
        ReasonCode.AllowListUnavailable => "allow_list_unavailable",
        ReasonCode.EvidenceMalformed => "evidence_malformed",
        ReasonCode.EvidenceSignatureInvalid => "evidence_signature_invalid",
        ReasonCode.EvidenceSignerUntrusted => "evidence_signer_untrusted",
        ReasonCode.IdentityMismatch => "identity_mismatch",
        ReasonCode.DeviceNotEnrollable => "device_not_enrollable",
        ReasonCode.NonceInvalid => "nonce_invalid",
        ReasonCode.EvidenceStale => "evidence_stale",
        ReasonCode.FirmwareUnknown => "firmware_unknown",
        ReasonCode.FirmwareRollback => "firmware_rollback",
        ReasonCode.ConfigurationForbidden => "configuration_forbidden",
        ReasonCode.LocationOutsideSite => "location_outside_site",
        ReasonCode.NeighbourCellsMismatch => "neighbour_cells_mismatch",
        ReasonCode.SiteUnknown => "site_unknown",
        ReasonCode.ClientCertificateRequired => "client_certificate_required",
        ReasonCode.AttestationRequired => "attestation_required",
        ReasonCode.EnrollmentTokenInvalid => "enrollment_token_invalid",
        ReasonCode.CsrMalformed => "csr_malformed",
        ReasonCode.CsrSignatureInvalid => "csr_signature_invalid",
        ReasonCode.CsrIdentityMismatch => "csr_identity_mismatch",
        ReasonCode.KeyPolicyViolation => "key_policy_violation",
        ReasonCode.KeyShared => "key_shared",
        ReasonCode.UnsupportedMediaType => "unsupported_media_type",
        ReasonCode.PayloadTooLarge => "payload_too_large",
        ReasonCode.CloneSuspected => "clone_suspected",
        ReasonCode.DeviceIdle => "device_idle",
        ReasonCode.SourceOutsidePrefixes => "source_outside_prefixes",
        ReasonCode.LocationDrift => "location_drift",
        ReasonCode.DenialBurst => "denial_burst",
        ReasonCode.DecisionsLost => "decisions_lost",
        ReasonCode.DecisionSpoolGrowing => "decision_spool_growing",
        ReasonCode.LifecycleTransition => "lifecycle_transition",
        _ => "unknown",
    };

    /// <summary>A short human title for problem details.</summary>
    public static string Title(ReasonCode code) => code switch
    {
        ReasonCode.Allowed => "Allowed",
        ReasonCode.CertificateMissing => "A client certificate is required",
        ReasonCode.CertificateUntrusted => "The client certificate is not issued by the operator device CA",
        ReasonCode.CertificatePolicyViolation => "The client certificate does not meet the device certificate policy",
        ReasonCode.CertificateExpired => "The device certificate has expired",
        ReasonCode.CertificateRevoked => "The device certificate has been revoked",
        ReasonCode.DeviceUnknown => "The certificate belongs to no registered device",
        ReasonCode.DeviceNotEnrolled => "The device is not enrolled",
        ReasonCode.DeviceSuspended => "The device is suspended",
        ReasonCode.DeviceRevoked => "The device has been revoked",
        ReasonCode.DeviceDecommissioned => "The device has been decommissioned",
        ReasonCode.RouteNotAllowed => "The route is not allowed for this subject",
        ReasonCode.AllowListStale => "The gateway has lost its allow-list updates for longer than the allowed staleness",
        ReasonCode.AllowListUnavailable => "The allow list cannot be consulted for this certificate right now",
        ReasonCode.EvidenceMalformed => "The attestation evidence is not a readable CMS SignedData over a JSON claim set",
        ReasonCode.EvidenceSignatureInvalid => "The evidence signature does not verify",
        ReasonCode.EvidenceSignerUntrusted => "The evidence signer does not chain to a trusted vendor root",
        ReasonCode.IdentityMismatch => "The serials of the TLS client, the evidence signer and the claims differ",
        ReasonCode.DeviceNotEnrollable => "The device is in a state that cannot enroll",
        ReasonCode.NonceInvalid => "The nonce is unknown, expired, already used or issued to another device",
        ReasonCode.EvidenceStale => "The evidence time is outside the allowed clock skew",
        ReasonCode.FirmwareUnknown => "The firmware version and digest are not in the reference values",
        ReasonCode.FirmwareRollback => "The firmware is older than the minimum or than what the unit ran before",
        ReasonCode.ConfigurationForbidden => "The reported configuration has a forbidden setting enabled",
        ReasonCode.LocationOutsideSite => "The reported position is outside the registered site",
        ReasonCode.NeighbourCellsMismatch => "The reported neighbour cells do not match the registered site",
        ReasonCode.SiteUnknown => "The device has no registered install site",
        ReasonCode.ClientCertificateRequired => "This operation needs the device's certificate as TLS client certificate",
        ReasonCode.AttestationRequired => "No passing, unexpired, unused attestation matches this request",
        ReasonCode.EnrollmentTokenInvalid => "The enrollment credentials are not valid",
        ReasonCode.CsrMalformed => "The body is not a base64 DER PKCS#10 request",
        ReasonCode.CsrSignatureInvalid => "The certificate request's signature does not verify",
        ReasonCode.CsrIdentityMismatch => "The certificate request names another identity than the attested one",
        ReasonCode.KeyPolicyViolation => "The key type or size is not allowed (ECDSA P-256/P-384 or RSA >= 3072)",
        ReasonCode.KeyShared => "The public key is already bound to another device",
        ReasonCode.UnsupportedMediaType => "The request's content type is not accepted here",
        ReasonCode.PayloadTooLarge => "The request body is larger than allowed",
        ReasonCode.CloneSuspected => "The same device identity is in use from two places at once",
        ReasonCode.DeviceIdle => "The device has not connected for longer than allowed",
        ReasonCode.SourceOutsidePrefixes => "The device connected from outside its site's allowed source prefixes",
        ReasonCode.LocationDrift => "The device reported a position far from its previous attestation",
        ReasonCode.DenialBurst => "Many denials from one source address in a short time",
        ReasonCode.DecisionsLost => "Decisions were lost by the monitoring pipeline",
        ReasonCode.DecisionSpoolGrowing => "A decision sink is failing and its spool is growing",
        ReasonCode.LifecycleTransition => "The device changed lifecycle state",
        _ => "Denied",
    };
}
