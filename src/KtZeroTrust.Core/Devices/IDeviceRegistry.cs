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
}

public sealed record ManifestImportResult(IReadOnlyList<string> Imported, IReadOnlyList<string> AlreadyKnown);

/// <summary>A registry operation refused for a reason the caller can act on. <see cref="Code"/> is stable.</summary>
public sealed class RegistryException(string code, string message) : Exception(message)
{
    public const string DeviceNotFound = "ZT-REG-001";
    public const string TransitionNotAllowed = "ZT-REG-002";
    public const string InvalidInput = "ZT-REG-003";
    public const string CertificateConflict = "ZT-REG-004";

    public string Code { get; } = code;
}
