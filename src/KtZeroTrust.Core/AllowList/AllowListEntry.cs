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

    /// <summary>
    /// The registry version that last changed this entry. Caches keep the highest version they have seen, so an
    /// older copy arriving late (a slow read racing a revocation) can never overwrite a newer one.
    /// </summary>
    public long Version { get; init; }

    /// <summary>The device's model and install site, for per-route device policies.</summary>
    public string? Model { get; init; }

    public string? Site { get; init; }

    /// <summary>
    /// Who put the device in its current (non-active) state and why, e.g. <c>detector:idle: device_idle: ...</c>:
    /// carried so that a denial says why the unit is suspended, not only that it is.
    /// </summary>
    public string? StateReason { get; init; }
}

/// <summary>The entries changed after some registry version, and the version they bring the reader up to.</summary>
public sealed record AllowListChanges(long Version, IReadOnlyList<AllowListEntry> Entries);

/// <summary>Where allow-list entries come from (the registry). A changed version means reload.</summary>
public interface IAllowListSource
{
    /// <summary>The registry's change counter: it grows with every write.</summary>
    Task<long> GetVersionAsync(CancellationToken cancellationToken = default);

    /// <summary>Every entry changed after <paramref name="sinceVersion"/> (-1: all), read consistently with the version returned.</summary>
    Task<AllowListChanges> LoadAllowListChangesAsync(long sinceVersion, CancellationToken cancellationToken = default);

    /// <summary>The entry for one certificate, or null when no device holds it.</summary>
    Task<AllowListEntry?> FindAllowListEntryAsync(CertificateHash certificateHash, CancellationToken cancellationToken = default);
}
