namespace KtZeroTrust.Core.Devices;

/// <summary>Reads over the whole fleet at once, for the console's inventory (one query a page, never one a device).</summary>
public interface IFleetInventory
{
    /// <summary>Each device's latest unrevoked certificate expiry, by serial (devices without one are absent).</summary>
    Task<IReadOnlyDictionary<string, DateTimeOffset>> GetCertificateExpiriesAsync(CancellationToken cancellationToken = default);

    /// <summary>Every install site with its coordinates (the fleet map).</summary>
    Task<IReadOnlyList<Attestation.Site>> ListSitesAsync(CancellationToken cancellationToken = default);
}
