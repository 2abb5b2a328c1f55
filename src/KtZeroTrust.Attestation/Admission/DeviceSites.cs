using KtZeroTrust.Core.Devices;
using Microsoft.Extensions.Caching.Memory;

namespace KtZeroTrust.Attestation.Admission;

/// <summary>
/// The install site of a registered unit, for admission's per-site share: read from the registry once and kept a few
/// minutes, so a storm's retries cost no registry read. Fairness only, never a security decision: a unit moved to
/// another site is counted under its old one until the entry expires.
/// </summary>
public sealed class DeviceSites(IDeviceRegistry registry) : IDisposable
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
    private const int MaxEntries = 200_000; // a fleet's worth of serials, a few MB

    private readonly MemoryCache _sites = new(new MemoryCacheOptions { SizeLimit = MaxEntries });

    /// <summary>The site of <paramref name="serial"/>, or null for no serial, an unknown unit or one without a site.</summary>
    public async ValueTask<string?> OfAsync(string? serial, CancellationToken cancellationToken)
    {
        if (serial is null)
        {
            return null;
        }

        if (_sites.TryGetValue(serial, out string? site))
        {
            return site;
        }

        site = (await registry.FindAsync(serial, cancellationToken))?.Site;
        _sites.Set(serial, site, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = Lifetime });
        return site;
    }

    public void Dispose() => _sites.Dispose();
}
