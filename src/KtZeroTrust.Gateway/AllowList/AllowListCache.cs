using System.Collections.Concurrent;
using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;

namespace KtZeroTrust.Gateway.AllowList;

/// <summary>What the L1 keeps per certificate: a struct stored inline in the dictionary (no object per entry).</summary>
public readonly record struct CachedEntry(string DeviceSerial, DeviceLifecycleState State, bool CertificateRevoked, long NotBeforeUtcTicks, long NotAfterUtcTicks, long Version, string? Model = null, string? Site = null, string? StateReason = null)
{
    public bool Allows => State == DeviceLifecycleState.Active && !CertificateRevoked;

    public static CachedEntry From(AllowListEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return new(entry.DeviceSerial, entry.State, entry.CertificateRevoked, entry.NotBeforeUtcTicks, entry.NotAfterUtcTicks, entry.Version, entry.Model, entry.Site, entry.StateReason);
    }
}

public enum CacheLookup
{
    /// <summary>In the cache: decide on the entry.</summary>
    Hit,

    /// <summary>Not in the cache: ask the next level, if there is one.</summary>
    Miss,

    /// <summary>Recently looked up and unknown (the negative cache).</summary>
    KnownUnknown,

    /// <summary>The cache has been cut off from updates for longer than allowed: nothing in it may be trusted.</summary>
    Stale,
}

/// <summary>
/// The in-process allow list (L1). Lookups by the 32-byte certificate hash take no lock and allocate nothing. Updates
/// keep the highest registry version per certificate, so they may arrive in any order. A bounded negative cache
/// remembers unknown certificates briefly. When the node loses its invalidation feed the cache is trusted only until a
/// deadline (the maximum staleness); after it every lookup is <see cref="CacheLookup.Stale"/> until a resync.
/// </summary>
public sealed class AllowListCache
{
    private readonly ConcurrentDictionary<CertificateHash, CachedEntry> _entries = new();
    private readonly ConcurrentDictionary<CertificateHash, long> _unknown = new();
    private readonly int _negativeCapacity;
    private long _trustedUntilTicks = long.MaxValue;
    private long _version = -1;

    public AllowListCache(int negativeCacheCapacity = 100_000) => _negativeCapacity = negativeCacheCapacity;

    /// <summary>The registry version the cache is complete up to (embedded feed); -1 before the first load.</summary>
    public long Version => Volatile.Read(ref _version);

    public int Count => _entries.Count;

    public int UnknownCount => _unknown.Count;

    public bool IsTrusted => Volatile.Read(ref _trustedUntilTicks) == long.MaxValue;

    public CacheLookup Lookup(in CertificateHash hash, long nowUtcTicks, out CachedEntry entry)
    {
        if (nowUtcTicks > Volatile.Read(ref _trustedUntilTicks))
        {
            entry = default;
            return CacheLookup.Stale;
        }

        if (_entries.TryGetValue(hash, out entry))
        {
            return CacheLookup.Hit;
        }

        return _unknown.TryGetValue(hash, out var until) && nowUtcTicks < until ? CacheLookup.KnownUnknown : CacheLookup.Miss;
    }

    /// <summary>The cached entry whatever the staleness (for maintenance, never for decisions).</summary>
    public bool TryGet(in CertificateHash hash, out CachedEntry entry) => _entries.TryGetValue(hash, out entry);

    public bool IsStale(long nowUtcTicks) => nowUtcTicks > Volatile.Read(ref _trustedUntilTicks);

    /// <summary>Stores an entry unless a newer version is already held; true when stored.</summary>
    public bool Apply(AllowListEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var incoming = CachedEntry.From(entry);
        _unknown.TryRemove(entry.CertificateHash, out _);
        while (true)
        {
            if (!_entries.TryGetValue(entry.CertificateHash, out var current))
            {
                if (_entries.TryAdd(entry.CertificateHash, incoming))
                {
                    return true;
                }

                continue;
            }

            if (current.Version > incoming.Version)
            {
                return false;
            }

            if (_entries.TryUpdate(entry.CertificateHash, incoming, current))
            {
                return true;
            }
        }
    }

    /// <summary>Drops an entry if it is still the version the caller saw (so a concurrent newer update survives).</summary>
    public bool Remove(in CertificateHash hash, long seenVersion)
        => _entries.TryGetValue(hash, out var current) && current.Version == seenVersion
            && _entries.TryRemove(new KeyValuePair<CertificateHash, CachedEntry>(hash, current));

    public void RaiseVersion(long version)
    {
        long current;
        while ((current = Volatile.Read(ref _version)) < version && Interlocked.CompareExchange(ref _version, version, current) != current)
        {
        }
    }

    /// <summary>Remembers an unknown certificate until <paramref name="untilUtcTicks"/>, within the negative cache's bound.</summary>
    public void RememberUnknown(in CertificateHash hash, long nowUtcTicks, long untilUtcTicks)
    {
        if (_unknown.Count >= _negativeCapacity)
        {
            foreach (var pair in _unknown)
            {
                if (pair.Value <= nowUtcTicks)
                {
                    _unknown.TryRemove(pair);
                }
            }

            if (_unknown.Count >= _negativeCapacity)
            {
                return; // full of live entries: the lookup limiter, not memory, absorbs the flood
            }
        }

        _unknown[hash] = untilUtcTicks;
    }

    public void ForgetUnknown() => _unknown.Clear();

    public CertificateHash[] SnapshotKeys() => [.. _entries.Keys];

    /// <summary>Cut off from updates: keep trusting the cache until <paramref name="untilUtcTicks"/> at the latest.</summary>
    public void TrustUntil(long untilUtcTicks)
    {
        long current;
        while ((current = Volatile.Read(ref _trustedUntilTicks)) > untilUtcTicks && Interlocked.CompareExchange(ref _trustedUntilTicks, untilUtcTicks, current) != current)
        {
        }
    }

    /// <summary>Back in sync: trusted again.</summary>
    public void MarkTrusted() => Volatile.Write(ref _trustedUntilTicks, long.MaxValue);
}
