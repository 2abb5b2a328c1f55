using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.Certificates;

namespace KtZeroTrust.Gateway.Enforcement;

/// <summary>
/// The per-request device decision: lifecycle state decides, not certificate validity alone (attack 3).
/// Pure and allocation-free; starts from deny and only an active, current, unrevoked entry allows.
/// </summary>
public sealed class DeviceRequestAuthorizer(AllowListCache allowList)
{
    public ReasonCode Authorize(DeviceConnectionIdentity? identity, long nowUtcTicks, out AllowListEntry? entry)
    {
        entry = null;
        if (identity is null)
        {
            return ReasonCode.CertificateMissing;
        }

        if (!allowList.TryGet(identity.Hash, out entry) || entry is null)
        {
            return ReasonCode.DeviceUnknown;
        }

        return entry.State switch
        {
            DeviceLifecycleState.Active when entry.CertificateRevoked => ReasonCode.CertificateRevoked,
            DeviceLifecycleState.Active when nowUtcTicks >= entry.NotAfterUtcTicks || nowUtcTicks < entry.NotBeforeUtcTicks => ReasonCode.CertificateExpired,
            DeviceLifecycleState.Active => ReasonCode.Allowed,
            DeviceLifecycleState.Provisioned => ReasonCode.DeviceNotEnrolled,
            DeviceLifecycleState.Suspended => ReasonCode.DeviceSuspended,
            DeviceLifecycleState.Revoked => ReasonCode.DeviceRevoked,
            DeviceLifecycleState.Decommissioned => ReasonCode.DeviceDecommissioned,
            _ => ReasonCode.DeviceUnknown,
        };
    }
}
