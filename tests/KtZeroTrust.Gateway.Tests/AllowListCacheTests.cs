using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;

namespace KtZeroTrust.Gateway.Tests;

public sealed class AllowListCacheTests
{
    private static readonly CertificateHash Hash = CertificateHash.Of([1]);
    private static readonly long Now = new DateTime(2026, 11, 22, 0, 0, 0, DateTimeKind.Utc).Ticks;

    private static AllowListEntry Entry(long version, DeviceLifecycleState state) => new()
    {
        CertificateHash = Hash,
        DeviceSerial = "FC-1",
        State = state,
        NotBeforeUtcTicks = 0,
        NotAfterUtcTicks = long.MaxValue,
        Version = version,
    };

    [Fact]
    public void Apply_KeepsTheHighestVersion_WhateverTheArrivalOrder()
    {
        var cache = new AllowListCache();
        Assert.True(cache.Apply(Entry(5, DeviceLifecycleState.Revoked)));
        Assert.False(cache.Apply(Entry(4, DeviceLifecycleState.Active))); // a late, older copy must not resurrect it
        Assert.Equal(CacheLookup.Hit, cache.Lookup(Hash, Now, out var entry));
        Assert.Equal(DeviceLifecycleState.Revoked, entry.State);
        Assert.True(cache.Apply(Entry(6, DeviceLifecycleState.Revoked)));
    }

    [Fact]
    public void NegativeCache_ExpiresIsClearedByAnEntry_AndIsBounded()
    {
        var cache = new AllowListCache(negativeCacheCapacity: 100);
        cache.RememberUnknown(Hash, Now, Now + 10);
        Assert.Equal(CacheLookup.KnownUnknown, cache.Lookup(Hash, Now, out _));
        Assert.Equal(CacheLookup.Miss, cache.Lookup(Hash, Now + 11, out _));
        cache.Apply(Entry(1, DeviceLifecycleState.Active));
        Assert.Equal(CacheLookup.Hit, cache.Lookup(Hash, Now, out _));

        // A flood of unknown certificates: memory stays bounded; expired ones make room for new ones.
        for (var i = 0; i < 10_000; i++)
        {
            cache.RememberUnknown(CertificateHash.Of(BitConverter.GetBytes(i)), Now, Now + 10);
        }

        Assert.Equal(100, cache.UnknownCount);
        cache.RememberUnknown(CertificateHash.Of([9, 9]), Now + 20, Now + 30);
        Assert.Equal(1, cache.UnknownCount);
    }

    [Fact]
    public void Staleness_DeniesAfterTheDeadline_UntilTrustedAgain()
    {
        var cache = new AllowListCache();
        cache.Apply(Entry(1, DeviceLifecycleState.Active));
        cache.TrustUntil(Now + 100);
        cache.TrustUntil(Now + 500); // a later loss does not extend the first deadline
        Assert.Equal(CacheLookup.Hit, cache.Lookup(Hash, Now + 100, out _));
        Assert.Equal(CacheLookup.Stale, cache.Lookup(Hash, Now + 101, out _));
        Assert.Equal(CacheLookup.Stale, cache.Lookup(CertificateHash.Of([2]), Now + 101, out _));
        cache.MarkTrusted();
        Assert.Equal(CacheLookup.Hit, cache.Lookup(Hash, Now + 101, out _));
    }

    [Fact]
    public void Remove_OnlyTheVersionSeen()
    {
        var cache = new AllowListCache();
        cache.Apply(Entry(1, DeviceLifecycleState.Active));
        cache.Apply(Entry(2, DeviceLifecycleState.Suspended));
        Assert.False(cache.Remove(Hash, 1));
        Assert.True(cache.Remove(Hash, 2));
        Assert.Equal(CacheLookup.Miss, cache.Lookup(Hash, Now, out _));
    }
}
