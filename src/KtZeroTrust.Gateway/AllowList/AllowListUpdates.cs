using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Gateway.Identity;

namespace KtZeroTrust.Gateway.AllowList;

/// <summary>
/// The one way changes enter the cache, whatever feeds them (registry poll or Redis push): newer versions are stored,
/// and a certificate that stops being allowed has its open connections aborted on the spot.
/// </summary>
public sealed class AllowListUpdates(AllowListCache cache, DeviceConnectionTracker connections, TimeProvider timeProvider)
{
    /// <summary>Returns how many entries were newer than the cache's.</summary>
    public int Apply(IEnumerable<AllowListEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var applied = 0;
        var now = timeProvider.GetUtcNow().UtcTicks;
        foreach (var entry in entries)
        {
            if (!cache.Apply(entry))
            {
                continue;
            }

            applied++;
            var reason = DeviceRequestAuthorizer.Decide(CachedEntry.From(entry), now);
            if (reason != ReasonCode.Allowed)
            {
                connections.Abort(entry.CertificateHash, entry.DeviceSerial, reason);
            }
        }

        return applied;
    }
}
