using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.Identity;

namespace KtZeroTrust.Gateway.AllowList;

/// <summary>The outcome of the per-request device check and the entry it was decided on (default when none).</summary>
public readonly record struct DeviceAuthorization(ReasonCode Reason, CachedEntry Entry);

/// <summary>
/// The per-request device decision: lifecycle state decides, not certificate validity alone (attack 3). Starts from
/// deny; only an active, current, unrevoked entry allows. An L1 hit completes synchronously without allocating; a miss
/// goes to the resolver (Redis, then the registry) when there is one, and its answer is cached either way.
/// </summary>
public sealed class DeviceRequestAuthorizer(AllowListCache cache, IAllowListResolver? resolver = null, AllowListOptions? options = null)
{
    private readonly long _negativeTicks = (options ?? new AllowListOptions()).NegativeCacheDuration.Ticks;

    public ValueTask<DeviceAuthorization> AuthorizeAsync(DeviceConnectionIdentity? identity, long nowUtcTicks, CancellationToken cancellationToken = default)
    {
        var reason = AuthorizeCached(identity, nowUtcTicks, out var entry, out var miss);
        return miss && resolver is not null
            ? ResolveAsync(identity!, nowUtcTicks, cancellationToken)
            : new ValueTask<DeviceAuthorization>(new DeviceAuthorization(reason, entry));
    }

    /// <summary>The L1-only decision; <paramref name="miss"/> tells the caller a lower level could know more.</summary>
    public ReasonCode AuthorizeCached(DeviceConnectionIdentity? identity, long nowUtcTicks, out CachedEntry entry, out bool miss)
    {
        miss = false;
        entry = default;
        if (identity is null)
        {
            return ReasonCode.CertificateMissing;
        }

        switch (cache.Lookup(identity.Hash, nowUtcTicks, out entry))
        {
            case CacheLookup.Hit:
                return Decide(entry, nowUtcTicks);
            case CacheLookup.Stale:
                return ReasonCode.AllowListStale;
            case CacheLookup.Miss:
                miss = true;
                return ReasonCode.DeviceUnknown;
            default:
                return ReasonCode.DeviceUnknown;
        }
    }

    public static ReasonCode Decide(in CachedEntry entry, long nowUtcTicks) => entry.State switch
    {
        DeviceLifecycleState.Active when entry.CertificateRevoked => ReasonCode.CertificateRevoked,
        DeviceLifecycleState.Active when nowUtcTicks < entry.NotBeforeUtcTicks => ReasonCode.CertificateNotYetValid,
        DeviceLifecycleState.Active when nowUtcTicks >= entry.NotAfterUtcTicks => ReasonCode.CertificateExpired,
        DeviceLifecycleState.Active => ReasonCode.Allowed,
        DeviceLifecycleState.Provisioned => ReasonCode.DeviceNotEnrolled,
        DeviceLifecycleState.Suspended => ReasonCode.DeviceSuspended,
        DeviceLifecycleState.Revoked => ReasonCode.DeviceRevoked,
        DeviceLifecycleState.Decommissioned => ReasonCode.DeviceDecommissioned,
        _ => ReasonCode.DeviceUnknown,
    };

    private async ValueTask<DeviceAuthorization> ResolveAsync(DeviceConnectionIdentity identity, long nowUtcTicks, CancellationToken cancellationToken)
    {
        var resolution = await resolver!.ResolveAsync(identity.Hash, cancellationToken);
        switch (resolution.Status)
        {
            case ResolutionStatus.Found:
                cache.Apply(resolution.Entry!);
                break;
            case ResolutionStatus.NotFound:
                cache.RememberUnknown(identity.Hash, nowUtcTicks, nowUtcTicks + _negativeTicks);
                return new DeviceAuthorization(ReasonCode.DeviceUnknown, default);
            default:
                return new DeviceAuthorization(ReasonCode.AllowListUnavailable, default);
        }

        // Decide on what the cache now holds: a newer version pushed meanwhile wins over the one just read.
        var reason = AuthorizeCached(identity, nowUtcTicks, out var entry, out var miss);
        return new DeviceAuthorization(miss ? ReasonCode.DeviceUnknown : reason, entry);
    }
}
