using System.Globalization;
using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.Registry.Redis;

/// <summary>
/// The allow list in Redis (the L2 every gateway node shares): one hash per certificate, <c>{prefix}{sha256}</c>, with
/// fields <c>v</c> (registry version) and <c>d</c> (<see cref="AllowListEntryCodec"/>); <c>{prefix}version</c>, the
/// registry version Redis is synchronised to; and the channel <c>{prefix}changes</c> on which every change is pushed.
/// Writes go through a script that keeps the higher version, so concurrent writers (an admin node, a node filling a
/// miss from the registry) can race in any order and Redis still ends up with the newest entry.
/// </summary>
public sealed class RedisAllowListStore(RedisConnection redis, string keyPrefix = RedisAllowListStore.DefaultKeyPrefix)
{
    public const string DefaultKeyPrefix = "zt:al:";

    /// <summary>Entries per change message: big enough to batch a fleet-wide change, small enough to keep messages short.</summary>
    public const int MaxBatch = 500;

    // KEYS[1] entry key; ARGV: version, encoded entry, ttl ms. Returns 1 when written, 0 when a newer version is there.
    private const string SetIfNewer = """
        local cur = redis.call('HGET', KEYS[1], 'v')
        if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
        redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        return 1
        """;

    // KEYS[1] version key; ARGV[1] version. Only ever moves forward.
    private const string RaiseVersion = """
        local cur = redis.call('GET', KEYS[1])
        if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
        redis.call('SET', KEYS[1], ARGV[1])
        return 1
        """;

    public string Channel => ChannelName(keyPrefix);

    public static string ChannelName(string keyPrefix = DefaultKeyPrefix) => keyPrefix + "changes";

    public string VersionKey => keyPrefix + "version";

    public string KeyOf(CertificateHash hash) => keyPrefix + hash.ToString();

    /// <summary>The entry for one certificate, or null when Redis has none.</summary>
    public async Task<AllowListEntry?> GetAsync(CertificateHash hash, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var bytes = await (await redis.DatabaseAsync()).HashGetAsync(KeyOf(hash), "d");
        return bytes.IsNull ? null : AllowListEntryCodec.Decode((byte[])bytes!);
    }

    /// <summary>Reads many entries at once; the reads are pipelined on the shared multiplexer.</summary>
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
        cancellationToken.ThrowIfCancellationRequested();
        var db = await redis.DatabaseAsync();
        var writes = new Task<RedisResult>[entries.Count];
        for (var i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            // Kept a day past the certificate's end; after that the certificate is refused as expired anyway.
            var ttl = Math.Max(0, entry.NotAfterUtcTicks - now.UtcTicks) / TimeSpan.TicksPerMillisecond + (long)TimeSpan.FromDays(1).TotalMilliseconds;
            writes[i] = db.ScriptEvaluateAsync(SetIfNewer, [KeyOf(entry.CertificateHash)],
                [entry.Version.ToString(CultureInfo.InvariantCulture), AllowListEntryCodec.Encode(entry), ttl]);
        }

        var results = await Task.WhenAll(writes);
        return results.Count(r => (long)r == 1);
    }

    /// <summary>Pushes entries to every subscribed node, in batches.</summary>
    public async Task PublishAsync(IReadOnlyList<AllowListEntry> entries, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var db = await redis.DatabaseAsync();
        for (var i = 0; i < entries.Count; i += MaxBatch)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = entries.Skip(i).Take(MaxBatch).ToList();
            await db.PublishAsync(RedisChannel.Literal(Channel), AllowListEntryCodec.EncodeBatch(batch));
        }
    }

    /// <summary>The registry version Redis holds everything up to; -1 when Redis has never been synchronised (or was emptied).</summary>
    public async Task<long> GetSyncedVersionAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var text = (string?)await (await redis.DatabaseAsync()).StringGetAsync(VersionKey);
        return text is null ? -1 : long.Parse(text, CultureInfo.InvariantCulture);
    }

    public async Task RaiseSyncedVersionAsync(long version, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        await (await redis.DatabaseAsync()).ScriptEvaluateAsync(RaiseVersion, [VersionKey], [version.ToString(CultureInfo.InvariantCulture)]);
    }
}
