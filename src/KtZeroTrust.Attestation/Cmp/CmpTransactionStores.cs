using System.Collections.Concurrent;
using System.Text.Json;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.Attestation.Cmp;

/// <summary>What a CMP transaction leaves waiting between two messages: whose it is, and until when.</summary>
public interface ICmpHeld
{
    /// <summary>SHA-256 of the certificate that signed the transaction's first message: only that signer may take it.</summary>
    string SignerHash { get; }

    DateTimeOffset Expires { get; }
}

/// <summary>A certificate issued by an ir/cr/p10cr/kur and waiting for the unit's certConf (RFC 4210 5.3.18).</summary>
public sealed record CmpPending(string Serial, string SignerHash, string AttestationId, byte[] Certificate, string PublicKeySha256, string CertReqId, DateTimeOffset Expires) : ICmpHeld;

/// <summary>
/// A verified request the CA had no capacity for: answered <c>waiting</c>, served when the unit polls (RFC 4210 5.3.22).
/// Held by its signer, one per signer (a newer one replaces it), so a unit cannot park requests without bound.
/// </summary>
public sealed record CmpWaiting(string SignerHash, string Transaction, byte[] Request, bool Renewal, DateTimeOffset Expires) : ICmpHeld;

/// <summary>
/// Where a CMP transaction's state waits, by key (the transaction id; a held request, its signer): this node's memory, or Redis when the attestation role
/// has one, so the next message may reach any attestation node. <see cref="TakeAsync"/> hands a value out once, and
/// only to the unit that left it.
/// </summary>
public interface ICmpTransactionStore<T>
    where T : class, ICmpHeld
{
    Task PutAsync(string transaction, T value, CancellationToken cancellationToken);

    /// <summary>The value of <paramref name="transaction"/> if <paramref name="signerHash"/> left it (then it is gone); else null and it stays.</summary>
    Task<T?> TakeAsync(string transaction, string? signerHash, CancellationToken cancellationToken);
}

internal sealed class InMemoryCmpTransactionStore<T>(TimeProvider timeProvider) : ICmpTransactionStore<T>
    where T : class, ICmpHeld
{
    private readonly ConcurrentDictionary<string, T> _held = new(StringComparer.Ordinal);

    public Task PutAsync(string transaction, T value, CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow();
        foreach (var (key, held) in _held)
        {
            if (held.Expires < now)
            {
                _held.TryRemove(key, out _);
            }
        }

        _held[transaction] = value;
        return Task.CompletedTask;
    }

    public Task<T?> TakeAsync(string transaction, string? signerHash, CancellationToken cancellationToken)
    {
        var found = _held.TryGetValue(transaction, out var held) && held.SignerHash == signerHash && held.Expires >= timeProvider.GetUtcNow()
            && _held.TryRemove(KeyValuePair.Create(transaction, held));
        return Task.FromResult(found ? held : null);
    }
}

/// <summary>One key per transaction, expiring with it; taken with a compare-and-delete script, so two messages never both get it.</summary>
internal sealed class RedisCmpTransactionStore<T>(RedisConnection redis, string keyPrefix) : ICmpTransactionStore<T>
    where T : class, ICmpHeld
{
    // Deletes and returns the value only when its signer field is the caller's: another unit's message leaves it waiting.
    private const string TakeScript = """
        local v = redis.call('GET', KEYS[1])
        if v and cjson.decode(v)['SignerHash'] == ARGV[1] then redis.call('DEL', KEYS[1]) return v end
        return false
        """;

    public async Task PutAsync(string transaction, T value, CancellationToken cancellationToken)
    {
        var ttl = value.Expires - DateTimeOffset.UtcNow;
        var database = await redis.DatabaseAsync();
        await database.StringSetAsync(keyPrefix + transaction, JsonSerializer.Serialize(value), ttl > TimeSpan.Zero ? ttl : TimeSpan.FromSeconds(1)).WaitAsync(cancellationToken);
    }

    public async Task<T?> TakeAsync(string transaction, string? signerHash, CancellationToken cancellationToken)
    {
        if (signerHash is null)
        {
            return null;
        }

        var database = await redis.DatabaseAsync();
        var value = (RedisValue)await database.ScriptEvaluateAsync(TakeScript, [keyPrefix + transaction], [signerHash]).WaitAsync(cancellationToken);
        return value.IsNullOrEmpty ? null : JsonSerializer.Deserialize<T>(value.ToString());
    }
}
