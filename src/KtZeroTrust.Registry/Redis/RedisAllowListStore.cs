using System.Globalization;
using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Redis;

namespace KtZeroTrust.Registry.Redis;

/// <summary>
/// The allow list in Redis (the L2 every gateway node shares): one hash per certificate, <c>{prefix}{sha256}</c>, with
/// fields <c>v</c> (registry version) and <c>d</c> (<see cref="AllowListEntryCodec"/>); <c>{prefix}version</c>, the
/// registry version Redis is synchronised to; and the channel <c>{prefix}changes</c> on which every change is pushed.
/// Writes go through a script that keeps the higher version, so concurrent writers (an admin node, a node filling a
/// miss from the registry) can race in any order and Redis still ends up with the newest entry.
/// </summary>
public sealed class RedisAllowListStore(IRedisClient redis, string keyPrefix = RedisAllowListStore.DefaultKeyPrefix)
{
    public const string DefaultKeyPrefix = "zt:al:";

    /// <summary>Entries per change message: big enough to batch a fleet-wide change, small enough to keep messages short.</summary>
    public const int MaxBatch = 500;

    // KEYS[1] entry key; ARGV: version, encoded entry, ttl ms. Returns 1 when written, 0 when a newer version is there.
    private static readonly RedisScript SetIfNewer = new("""
        local cur = redis.call('HGET', KEYS[1], 'v')
        if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
        redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        return 1
        """);

    // KEYS[1] version key; ARGV[1] version. Only ever moves forward.
    private static readonly RedisScript RaiseVersion = new("""
        local cur = redis.call('GET', KEYS[1])
        if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
        redis.call('SET', KEYS[1], ARGV[1])
        return 1
        """);

    public string Channel => ChannelName(keyPrefix);

    public static string ChannelName(string keyPrefix = DefaultKeyPrefix) => keyPrefix + "changes";

    public string VersionKey => keyPrefix + "version";

    public string KeyOf(CertificateHash hash) => keyPrefix + hash.ToString();

    /// <summary>The entry for one certificate, or null when Redis has none.</summary>
    public async Task<AllowListEntry?> GetAsync(CertificateHash hash, CancellationToken cancellationToken = default)
    {
        var bytes = await redis.HashGetAsync(KeyOf(hash), "d", cancellationToken);
        return bytes is null ? null : AllowListEntryCodec.Decode(bytes);
    }

    /// <summary>Reads many entries at once; the reads are pipelined on the shared connection.</summary>
    public async Task<IReadOnlyList<AllowListEntry?>> GetManyAsync(IReadOnlyList<CertificateHash> hashes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(hashes);
        var reads = new Task<AllowListEntry?>[hashes.Count];
        for (var i = 0; i < hashes.Count; i++)
        {
            reads[i] = GetAsync(hashes[i], cancellationToken);
        }

        return await Task.WhenAll(reads);
    }

    /// <summary>Writes entries (keeping newer versions already there); returns how many were written.</summary>
    public async Task<int> WriteAsync(IReadOnlyList<AllowListEntry> entries, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var writes = new Task<RedisReply>[entries.Count];
        for (var i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            // Kept a day past the certificate's end; after that the certificate is refused as expired anyway.
            var ttl = Math.Max(0, entry.NotAfterUtcTicks - now.UtcTicks) / TimeSpan.TicksPerMillisecond + (long)TimeSpan.FromDays(1).TotalMilliseconds;
            writes[i] = redis.EvaluateAsync(SetIfNewer, [KeyOf(entry.CertificateHash)],
                [entry.Version.ToString(CultureInfo.InvariantCulture), AllowListEntryCodec.Encode(entry), ttl], cancellationToken);
        }

        var results = await Task.WhenAll(writes);
        return results.Count(r => r.AsInt64() == 1);
    }

    /// <summary>Pushes entries to every subscribed node, in batches.</summary>
    public async Task PublishAsync(IReadOnlyList<AllowListEntry> entries, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entries);
        for (var i = 0; i < entries.Count; i += MaxBatch)
        {
            var batch = entries.Skip(i).Take(MaxBatch).ToList();
            await redis.PublishAsync(Channel, AllowListEntryCodec.EncodeBatch(batch), cancellationToken);
        }
    }

    /// <summary>The registry version Redis holds everything up to; -1 when Redis has never been synchronised (or was emptied).</summary>
    public async Task<long> GetSyncedVersionAsync(CancellationToken cancellationToken = default)
    {
        var text = await redis.StringGetTextAsync(VersionKey, cancellationToken);
        return text is null ? -1 : long.Parse(text, CultureInfo.InvariantCulture);
    }

    public async Task RaiseSyncedVersionAsync(long version, CancellationToken cancellationToken = default)
        => await redis.EvaluateAsync(RaiseVersion, [VersionKey], [version.ToString(CultureInfo.InvariantCulture)], cancellationToken);
}
