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
}

public enum DecisionOutcome
{
    Allow,
    Deny,
}

public static class ReasonCodes
{
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
        _ => "Denied",
    };
}
