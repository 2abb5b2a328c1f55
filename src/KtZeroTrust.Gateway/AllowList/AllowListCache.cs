using System.Collections.Frozen;
using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;

namespace KtZeroTrust.Gateway.AllowList;

/// <summary>
/// The in-process allow list: an immutable frozen snapshot swapped whole on every change, so lookups take no lock
/// and allocate nothing. It starts empty, which denies every device until the registry has been read (fail closed).
/// </summary>
public sealed class AllowListCache
{
    private volatile Snapshot _snapshot = new(FrozenDictionary<CertificateHash, AllowListEntry>.Empty, -1);

    /// <summary>The registry version the snapshot was built from; -1 before the first load.</summary>
    public long Version => _snapshot.Version;

    public int Count => _snapshot.Entries.Count;

    public bool TryGet(in CertificateHash hash, out AllowListEntry? entry)
        => _snapshot.Entries.TryGetValue(hash, out entry);

    public void Replace(IEnumerable<AllowListEntry> entries, long version)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var dictionary = new Dictionary<CertificateHash, AllowListEntry>();
        foreach (var entry in entries)
        {
            dictionary[entry.CertificateHash] = entry;
        }

        _snapshot = new Snapshot(dictionary.ToFrozenDictionary(), version);
    }

    private sealed record Snapshot(FrozenDictionary<CertificateHash, AllowListEntry> Entries, long Version);
}
