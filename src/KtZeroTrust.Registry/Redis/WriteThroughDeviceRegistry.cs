using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;

namespace KtZeroTrust.Registry.Redis;

/// <summary>
/// A registry whose writes go through to Redis: after each committed change the synchronizer pushes it to every
/// gateway node. The registry stays the source of truth: when Redis cannot be reached the change is still committed,
/// <paramref name="onWriteThroughFailed"/> is told, and the periodic synchronisation delivers it once Redis is back.
/// Without Redis the same hook refreshes this process's own allow list right after its writes.
/// </summary>
public sealed class WriteThroughDeviceRegistry(IDeviceRegistry inner, Func<CancellationToken, Task> afterWrite, Action<Exception>? onWriteThroughFailed = null) : IDeviceRegistry
{
    public WriteThroughDeviceRegistry(IDeviceRegistry inner, RegistryRedisSynchronizer synchronizer, Action<Exception>? onWriteThroughFailed = null)
        : this(inner, synchronizer.SyncAsync, onWriteThroughFailed)
    {
    }

    public async Task<ManifestImportResult> ImportAsync(IReadOnlyList<ManifestDevice> devices, string actor, CancellationToken cancellationToken = default)
    {
        var result = await inner.ImportAsync(devices, actor, cancellationToken);
        await WriteThroughAsync(cancellationToken);
        return result;
    }

    public async Task<DeviceRecord> TransitionAsync(string serial, DeviceLifecycleState target, string actor, string reason, CancellationToken cancellationToken = default)
    {
        var result = await inner.TransitionAsync(serial, target, actor, reason, cancellationToken);
        await WriteThroughAsync(cancellationToken);
        return result;
    }

    public async Task AddCertificateAsync(DeviceCertificateRecord certificate, string actor, CancellationToken cancellationToken = default)
    {
        await inner.AddCertificateAsync(certificate, actor, cancellationToken);
        await WriteThroughAsync(cancellationToken);
    }

    public async Task ImportReferenceValuesAsync(Core.Attestation.ReferenceValues values, string actor, CancellationToken cancellationToken = default)
        => await inner.ImportReferenceValuesAsync(values, actor, cancellationToken);

    public async Task EnrollAsync(Core.Attestation.EnrollmentCommit enrollment, string actor, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await inner.EnrollAsync(enrollment, actor, now, cancellationToken);
        await WriteThroughAsync(cancellationToken);
    }

    public Task RecordAttestationAsync(Core.Attestation.AttestationRecord attestation, CancellationToken cancellationToken = default) => inner.RecordAttestationAsync(attestation, cancellationToken);

    public Task<Core.Attestation.Site?> FindSiteAsync(string id, CancellationToken cancellationToken = default) => inner.FindSiteAsync(id, cancellationToken);

    public Task<IReadOnlyList<Core.Attestation.FirmwareReference>> GetFirmwareAsync(string model, CancellationToken cancellationToken = default) => inner.GetFirmwareAsync(model, cancellationToken);

    public Task<Core.Attestation.ModelPolicy?> FindModelPolicyAsync(string model, CancellationToken cancellationToken = default) => inner.FindModelPolicyAsync(model, cancellationToken);

    public Task<IReadOnlyList<Core.Attestation.AttestationRecord>> GetAttestationsAsync(string serial, int limit, CancellationToken cancellationToken = default)
        => inner.GetAttestationsAsync(serial, limit, cancellationToken);

    public Task<Core.Attestation.AttestationRecord?> FindUsableAttestationAsync(string serial, string nonce, DateTimeOffset now, CancellationToken cancellationToken = default)
        => inner.FindUsableAttestationAsync(serial, nonce, now, cancellationToken);

    public Task<string?> FindSerialByPublicKeyAsync(string publicKeySha256, CancellationToken cancellationToken = default) => inner.FindSerialByPublicKeyAsync(publicKeySha256, cancellationToken);

    public Task<IReadOnlyList<Core.Attestation.RevokedCertificate>> GetRevokedCertificatesAsync(CancellationToken cancellationToken = default) => inner.GetRevokedCertificatesAsync(cancellationToken);

    public Task<Core.Attestation.AttestationRecord?> FindUsableAttestationByClientAsync(string serial, string clientCertificateSha256, DateTimeOffset now, CancellationToken cancellationToken = default)
        => inner.FindUsableAttestationByClientAsync(serial, clientCertificateSha256, now, cancellationToken);

    public Task<CertificateStanding?> FindCertificateBySerialNumberAsync(string certificateSerialNumber, CancellationToken cancellationToken = default) => inner.FindCertificateBySerialNumberAsync(certificateSerialNumber, cancellationToken);

    public Task<DeviceRecord?> FindAsync(string serial, CancellationToken cancellationToken = default) => inner.FindAsync(serial, cancellationToken);

    public Task<IReadOnlyList<DeviceRecord>> ListAsync(DeviceLifecycleState? state = null, CancellationToken cancellationToken = default) => inner.ListAsync(state, cancellationToken);

    public Task<IReadOnlyList<DeviceCertificateRecord>> GetCertificatesAsync(string serial, CancellationToken cancellationToken = default) => inner.GetCertificatesAsync(serial, cancellationToken);

    public Task<IReadOnlyList<LifecycleTransitionRecord>> GetHistoryAsync(string serial, CancellationToken cancellationToken = default) => inner.GetHistoryAsync(serial, cancellationToken);

    public Task<long> GetVersionAsync(CancellationToken cancellationToken = default) => inner.GetVersionAsync(cancellationToken);

    public Task<AllowListChanges> LoadAllowListChangesAsync(long sinceVersion, CancellationToken cancellationToken = default) => inner.LoadAllowListChangesAsync(sinceVersion, cancellationToken);

    public Task<AllowListEntry?> FindAllowListEntryAsync(CertificateHash certificateHash, CancellationToken cancellationToken = default) => inner.FindAllowListEntryAsync(certificateHash, cancellationToken);

    private async Task WriteThroughAsync(CancellationToken cancellationToken)
    {
        try
        {
            await afterWrite(cancellationToken);
        }
        catch (Exception ex) when (KtZeroTrust.Redis.RedisFailure.Is(ex) || ex is FormatException)
        {
            onWriteThroughFailed?.Invoke(ex);
        }
    }
}
