using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;

namespace KtZeroTrust.Core.AllowList;

/// <summary>
/// What the gateway needs to decide on a device request, keyed by the certificate's hash.
/// Times are UTC ticks so the per-request check compares longs.
/// </summary>
public sealed record AllowListEntry
{
    public required CertificateHash CertificateHash { get; init; }
    public required string DeviceSerial { get; init; }
    public required DeviceLifecycleState State { get; init; }
    public required long NotBeforeUtcTicks { get; init; }
    public required long NotAfterUtcTicks { get; init; }

    /// <summary>True when this certificate itself was revoked (a device may keep other, newer ones).</summary>
    public bool CertificateRevoked { get; init; }
}

/// <summary>Where allow-list entries come from (the registry). A changed version means reload.</summary>
public interface IAllowListSource
{
    Task<long> GetVersionAsync(CancellationToken cancellationToken = default);

    Task<IReadOnlyList<AllowListEntry>> LoadAllowListAsync(CancellationToken cancellationToken = default);
}
