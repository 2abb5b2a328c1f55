using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.Certificates;
using KtZeroTrust.Gateway.Enforcement;

namespace KtZeroTrust.Gateway.Tests.Enforcement;

public sealed class DeviceRequestAuthorizerTests
{
    private static readonly long Now = new DateTime(2026, 11, 22, 0, 0, 0, DateTimeKind.Utc).Ticks;
    private static readonly CertificateHash Hash = CertificateHash.Of([42]);

    private static ReasonCode Decide(DeviceLifecycleState state, bool certRevoked = false, long? notAfter = null, long? notBefore = null, bool present = true)
    {
        var cache = new AllowListCache();
        if (present)
        {
            cache.Replace([new AllowListEntry
            {
                CertificateHash = Hash,
                DeviceSerial = "FC-1",
                State = state,
                NotBeforeUtcTicks = notBefore ?? Now - TimeSpan.TicksPerHour,
                NotAfterUtcTicks = notAfter ?? Now + TimeSpan.TicksPerHour,
                CertificateRevoked = certRevoked,
            }], version: 1);
        }

        return new DeviceRequestAuthorizer(cache).Authorize(new DeviceConnectionIdentity(Hash, "FC-1"), Now, out _);
    }

    [Theory]
    [InlineData(DeviceLifecycleState.Active, ReasonCode.Allowed)]
    [InlineData(DeviceLifecycleState.Provisioned, ReasonCode.DeviceNotEnrolled)]
    [InlineData(DeviceLifecycleState.Suspended, ReasonCode.DeviceSuspended)]
    [InlineData(DeviceLifecycleState.Revoked, ReasonCode.DeviceRevoked)]
    [InlineData(DeviceLifecycleState.Decommissioned, ReasonCode.DeviceDecommissioned)]
    public void Authorize_LifecycleStateDecides(DeviceLifecycleState state, ReasonCode expected)
        => Assert.Equal(expected, Decide(state));

    [Fact]
    public void Authorize_ExpiredEntry_OnLongLivedConnection_IsDenied()
        => Assert.Equal(ReasonCode.CertificateExpired, Decide(DeviceLifecycleState.Active, notAfter: Now));

    [Fact]
    public void Authorize_NotYetValidEntry_IsDenied()
        => Assert.Equal(ReasonCode.CertificateExpired, Decide(DeviceLifecycleState.Active, notBefore: Now + 1));

    [Fact]
    public void Authorize_RevokedCertificateOfActiveDevice_IsDenied()
        => Assert.Equal(ReasonCode.CertificateRevoked, Decide(DeviceLifecycleState.Active, certRevoked: true));

    [Fact]
    public void Authorize_UnknownCertificate_IsDenied()
        => Assert.Equal(ReasonCode.DeviceUnknown, Decide(DeviceLifecycleState.Active, present: false));

    [Fact]
    public void Authorize_NoIdentity_IsDenied()
        => Assert.Equal(ReasonCode.CertificateMissing, new DeviceRequestAuthorizer(new AllowListCache()).Authorize(null, Now, out _));

    [Fact]
    public void Authorize_BeforeFirstLoad_DeniesEverything()
    {
        var cache = new AllowListCache();
        Assert.Equal(-1, cache.Version);
        Assert.Equal(ReasonCode.DeviceUnknown, new DeviceRequestAuthorizer(cache).Authorize(new DeviceConnectionIdentity(Hash, "FC-1"), Now, out _));
    }

    [Fact]
    public void Authorize_AllowListHit_DoesNotAllocate()
    {
        var cache = new AllowListCache();
        cache.Replace([new AllowListEntry { CertificateHash = Hash, DeviceSerial = "FC-1", State = DeviceLifecycleState.Active, NotBeforeUtcTicks = 0, NotAfterUtcTicks = long.MaxValue }], 1);
        var authorizer = new DeviceRequestAuthorizer(cache);
        var identity = new DeviceConnectionIdentity(Hash, "FC-1");
        authorizer.Authorize(identity, Now, out _);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            authorizer.Authorize(identity, Now, out _);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
