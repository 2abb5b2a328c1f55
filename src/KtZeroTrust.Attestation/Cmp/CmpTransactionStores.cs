using System.Collections.Concurrent;
using System.Text.Json;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.Attestation.Cmp;

/// <summary>A certificate issued by an ir/cr/p10cr/kur and waiting for the unit's certConf, by CMP transaction id.</summary>
public sealed record CmpPending(string Serial, string SignerHash, string AttestationId, byte[] Certificate, string PublicKeySha256, string CertReqId, DateTimeOffset Expires);

/// <summary>
/// Where unconfirmed certificates wait (RFC 4210 5.3.18): this node's memory, or Redis when the attestation role has
/// one, so a certConf may reach any attestation node. <see cref="TakeAsync"/> hands a pending certificate out once,
/// and only to the unit that asked for it.
/// </summary>
public interface ICmpPendingStore
{
    Task PutAsync(string transaction, CmpPending pending, CancellationToken cancellationToken);

    /// <summary>The pending certificate of <paramref name="transaction"/> if <paramref name="signerHash"/> asked for it (then it is gone); else null and it stays.</summary>
    Task<CmpPending?> TakeAsync(string transaction, string? signerHash, CancellationToken cancellationToken);
}

internal sealed class InMemoryCmpPendingStore(TimeProvider timeProvider) : ICmpPendingStore
{
    private readonly ConcurrentDictionary<string, CmpPending> _pending = new(StringComparer.Ordinal);

    public Task PutAsync(string transaction, CmpPending pending, CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow();
        foreach (var (key, value) in _pending)
        {
            if (value.Expires < now)
            {
                _pending.TryRemove(key, out _);
            }
        }

        _pending[transaction] = pending;
        return Task.CompletedTask;
    }

    public Task<CmpPending?> TakeAsync(string transaction, string? signerHash, CancellationToken cancellationToken)
    {
        var found = _pending.TryGetValue(transaction, out var pending) && pending.SignerHash == signerHash && pending.Expires >= timeProvider.GetUtcNow()
            && _pending.TryRemove(KeyValuePair.Create(transaction, pending));
        return Task.FromResult(found ? pending : null);
    }
}

/// <summary>One key per transaction, expiring with it; taken with a compare-and-delete script, so two certConfs never both get it.</summary>
internal sealed class RedisCmpPendingStore(RedisConnection redis, string keyPrefix = "zt:cmp:pending:") : ICmpPendingStore
{
    // Deletes and returns the value only when its signer field is the caller's: another unit's certConf leaves it waiting.
    private const string TakeScript = """
        local v = redis.call('GET', KEYS[1])
        if v and cjson.decode(v)['SignerHash'] == ARGV[1] then redis.call('DEL', KEYS[1]) return v end
        return false
        """;

    public async Task PutAsync(string transaction, CmpPending pending, CancellationToken cancellationToken)
    {
        var ttl = pending.Expires - DateTimeOffset.UtcNow;
        var database = await redis.DatabaseAsync();
        await database.StringSetAsync(keyPrefix + transaction, JsonSerializer.Serialize(pending), ttl > TimeSpan.Zero ? ttl : TimeSpan.FromSeconds(1)).WaitAsync(cancellationToken);
    }

    public async Task<CmpPending?> TakeAsync(string transaction, string? signerHash, CancellationToken cancellationToken)
    {
        if (signerHash is null)
        {
            return null;
        }

        var database = await redis.DatabaseAsync();
        var value = (RedisValue)await database.ScriptEvaluateAsync(TakeScript, [keyPrefix + transaction], [signerHash]).WaitAsync(cancellationToken);
        return value.IsNullOrEmpty ? null : JsonSerializer.Deserialize<CmpPending>(value.ToString());
    }
}
