using KtZeroTrust.Core.AllowList;

namespace KtZeroTrust.Core.Devices;

/// <summary>The device registry: the source of truth for identity and lifecycle.</summary>
public interface IDeviceRegistry : IAllowListSource
{
    /// <summary>Imports devices as Provisioned; serials already known are skipped and reported.</summary>
    Task<ManifestImportResult> ImportAsync(IReadOnlyList<ManifestDevice> devices, string actor, CancellationToken cancellationToken = default);

    Task<DeviceRecord?> FindAsync(string serial, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<DeviceRecord>> ListAsync(DeviceLifecycleState? state = null, CancellationToken cancellationToken = default);

    /// <summary>Moves a device to <paramref name="target"/>; throws <see cref="RegistryException"/> for unknown devices or forbidden transitions.</summary>
    Task<DeviceRecord> TransitionAsync(string serial, DeviceLifecycleState target, string actor, string reason, CancellationToken cancellationToken = default);

    /// <summary>Records an issued operational certificate; a Provisioned device becomes Active.</summary>
    Task AddCertificateAsync(DeviceCertificateRecord certificate, string actor, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<DeviceCertificateRecord>> GetCertificatesAsync(string serial, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<LifecycleTransitionRecord>> GetHistoryAsync(string serial, CancellationToken cancellationToken = default);

    /// <summary>Adds or replaces sites, firmware references and model policies.</summary>
    Task ImportReferenceValuesAsync(Attestation.ReferenceValues values, string actor, CancellationToken cancellationToken = default);

    Task<Attestation.Site?> FindSiteAsync(string id, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<Attestation.FirmwareReference>> GetFirmwareAsync(string model, CancellationToken cancellationToken = default);

    Task<Attestation.ModelPolicy?> FindModelPolicyAsync(string model, CancellationToken cancellationToken = default);

    /// <summary>Stores an appraisal; a passing one also becomes the device's last attested state.</summary>
    Task RecordAttestationAsync(Attestation.AttestationRecord attestation, CancellationToken cancellationToken = default);

    /// <summary>The device's appraisals, newest first, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<Attestation.AttestationRecord>> GetAttestationsAsync(string serial, int limit, CancellationToken cancellationToken = default);

    /// <summary>
    /// The newest passing, unused, unexpired attestation of <paramref name="serial"/> posted with this client
    /// certificate (SHA-256 hex): for protocols with no place for the nonce (CMP), the factory identity binds the two.
    /// </summary>
    Task<Attestation.AttestationRecord?> FindUsableAttestationByClientAsync(string serial, string clientCertificateSha256, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>The passing attestation of <paramref name="serial"/> with this nonce, if still unused and unexpired.</summary>
    Task<Attestation.AttestationRecord?> FindUsableAttestationAsync(string serial, string nonce, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>
    /// Enrollment in one transaction: consumes the attestation (refused when used or expired), refuses a public key
    /// another device holds, records the certificate, retires the device's previous ones (superseded) and makes a
    /// Provisioned device Active.
    /// </summary>
    Task EnrollAsync(Attestation.EnrollmentCommit enrollment, string actor, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>The serial holding a public key (SPKI SHA-256), if any.</summary>
    Task<string?> FindSerialByPublicKeyAsync(string publicKeySha256, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<Attestation.RevokedCertificate>> GetRevokedCertificatesAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// The certificate with this serial number (hex, as <c>X509Certificate2.SerialNumber</c> spells it) and its device's
    /// state now, or null: what an OCSP answer is made of, read at the moment it is asked.
    /// </summary>
    Task<CertificateStanding?> FindCertificateBySerialNumberAsync(string certificateSerialNumber, CancellationToken cancellationToken = default);
}

/// <summary>A certificate and the state of the device it was issued to, read together.</summary>
public sealed record CertificateStanding(DeviceCertificateRecord Certificate, DeviceLifecycleState DeviceState, DateTimeOffset DeviceUpdatedAt);

public sealed record ManifestImportResult(IReadOnlyList<string> Imported, IReadOnlyList<string> AlreadyKnown);

/// <summary>A registry operation refused for a reason the caller can act on. <see cref="Code"/> is stable.</summary>
public sealed class RegistryException(string code, string message) : Exception(message)
{
    public const string DeviceNotFound = "ZT-REG-001";
    public const string TransitionNotAllowed = "ZT-REG-002";
    public const string InvalidInput = "ZT-REG-003";
    public const string CertificateConflict = "ZT-REG-004";
    public const string AttestationUnusable = "ZT-REG-005";
    public const string KeyShared = "ZT-REG-006";

    public string Code { get; } = code;
}
