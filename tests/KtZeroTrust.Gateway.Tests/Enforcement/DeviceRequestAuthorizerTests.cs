using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.Identity;

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
            cache.Apply(new AllowListEntry
            {
                CertificateHash = Hash,
                DeviceSerial = "FC-1",
                State = state,
                NotBeforeUtcTicks = notBefore ?? Now - TimeSpan.TicksPerHour,
                NotAfterUtcTicks = notAfter ?? Now + TimeSpan.TicksPerHour,
                CertificateRevoked = certRevoked,
                Version = 1,
            });
        }

        return new DeviceRequestAuthorizer(cache).AuthorizeCached(new DeviceConnectionIdentity(Hash, "FC-1"), Now, out _, out _);
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
        => Assert.Equal(ReasonCode.CertificateNotYetValid, Decide(DeviceLifecycleState.Active, notBefore: Now + 1));

    [Fact]
    public void Authorize_RevokedCertificateOfActiveDevice_IsDenied()
        => Assert.Equal(ReasonCode.CertificateRevoked, Decide(DeviceLifecycleState.Active, certRevoked: true));

    [Fact]
    public void Authorize_UnknownCertificate_IsDenied()
        => Assert.Equal(ReasonCode.DeviceUnknown, Decide(DeviceLifecycleState.Active, present: false));

    [Fact]
    public void Authorize_NoIdentity_IsDenied()
        => Assert.Equal(ReasonCode.CertificateMissing, new DeviceRequestAuthorizer(new AllowListCache()).AuthorizeCached(null, Now, out _, out _));

    [Fact]
    public void Authorize_BeforeFirstLoad_DeniesEverything()
    {
        var cache = new AllowListCache();
        Assert.Equal(-1, cache.Version);
        Assert.Equal(ReasonCode.DeviceUnknown, new DeviceRequestAuthorizer(cache).AuthorizeCached(new DeviceConnectionIdentity(Hash, "FC-1"), Now, out _, out _));
    }

    [Fact]
    public void Authorize_AllowListHit_DoesNotAllocate()
    {
        var cache = new AllowListCache();
        cache.Apply(new AllowListEntry { CertificateHash = Hash, DeviceSerial = "FC-1", State = DeviceLifecycleState.Active, NotBeforeUtcTicks = 0, NotAfterUtcTicks = long.MaxValue });
        var authorizer = new DeviceRequestAuthorizer(cache, new ThrowingResolver());
        var identity = new DeviceConnectionIdentity(Hash, "FC-1");
        _ = ReasonOf(authorizer.AuthorizeAsync(identity, Now, Ct));

        var before = GC.GetAllocatedBytesForCurrentThread();
        var allowed = 0;
        for (var i = 0; i < 1000; i++)
        {
            allowed += ReasonOf(authorizer.AuthorizeAsync(identity, Now, Ct)) == ReasonCode.Allowed ? 1 : 0;
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(1000, allowed);
    }

    [Fact]
    public async Task Miss_GoesToTheResolver_AndItsAnswerIsCachedBothWays()
    {
        var cache = new AllowListCache();
        var resolver = new CountingResolver();
        var authorizer = new DeviceRequestAuthorizer(cache, resolver, new AllowListOptions { NegativeCacheDuration = TimeSpan.FromMinutes(1) });
        var known = new DeviceConnectionIdentity(Hash, "FC-1");
        var unknown = new DeviceConnectionIdentity(CertificateHash.Of([7]), "FC-7");
        resolver.Entries[Hash] = new AllowListEntry { CertificateHash = Hash, DeviceSerial = "FC-1", State = DeviceLifecycleState.Active, NotBeforeUtcTicks = 0, NotAfterUtcTicks = long.MaxValue, Version = 3 };

        Assert.Equal(ReasonCode.Allowed, (await authorizer.AuthorizeAsync(known, Now, Ct)).Reason);
        Assert.Equal(ReasonCode.Allowed, (await authorizer.AuthorizeAsync(known, Now, Ct)).Reason);
        Assert.Equal(ReasonCode.DeviceUnknown, (await authorizer.AuthorizeAsync(unknown, Now, Ct)).Reason);
        Assert.Equal(ReasonCode.DeviceUnknown, (await authorizer.AuthorizeAsync(unknown, Now, Ct)).Reason);
        Assert.Equal(2, resolver.Calls); // one per certificate: the hit and the unknown are both remembered
        Assert.Equal(ReasonCode.DeviceUnknown, (await authorizer.AuthorizeAsync(unknown, Now + TimeSpan.FromMinutes(2).Ticks, Ct)).Reason);
        Assert.Equal(3, resolver.Calls); // the negative entry expired

        resolver.Unavailable = true;
        var other = new DeviceConnectionIdentity(CertificateHash.Of([8]), "FC-8");
        Assert.Equal(ReasonCode.AllowListUnavailable, (await authorizer.AuthorizeAsync(other, Now, Ct)).Reason);
        Assert.Equal(ReasonCode.AllowListUnavailable, (await authorizer.AuthorizeAsync(other, Now, Ct)).Reason);
        Assert.Equal(5, resolver.Calls); // unavailability is not cached
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>An L1 hit must complete synchronously; reading it any other way would hide an allocation.</summary>
    private static ReasonCode ReasonOf(ValueTask<DeviceAuthorization> pending)
        => pending.IsCompletedSuccessfully ? pending.Result.Reason : throw new InvalidOperationException("The authorization did not complete synchronously.");

    private sealed class ThrowingResolver : IAllowListResolver
    {
        public Task<AllowListResolution> ResolveAsync(CertificateHash hash, CancellationToken cancellationToken) => throw new InvalidOperationException("a hit must not reach the resolver");
    }

    private sealed class CountingResolver : IAllowListResolver
    {
        public Dictionary<CertificateHash, AllowListEntry> Entries { get; } = [];
        public int Calls { get; private set; }
        public bool Unavailable { get; set; }

        public Task<AllowListResolution> ResolveAsync(CertificateHash hash, CancellationToken cancellationToken)
        {
            Calls++;
            return Task.FromResult(Unavailable ? new AllowListResolution(ResolutionStatus.Unavailable, null)
                : Entries.TryGetValue(hash, out var e) ? new AllowListResolution(ResolutionStatus.Found, e) : new AllowListResolution(ResolutionStatus.NotFound, null));
        }
    }
}
