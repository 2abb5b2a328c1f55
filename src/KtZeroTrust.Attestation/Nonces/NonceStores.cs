using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.Attestation.Nonces;

/// <summary>Single-use nonces bound to a device serial.</summary>
public interface INonceStore
{
    /// <summary>A new random nonce for <paramref name="serial"/>, valid for <paramref name="lifetime"/>.</summary>
    Task<string> IssueAsync(string serial, TimeSpan lifetime, CancellationToken cancellationToken = default);

    /// <summary>Consumes a nonce: the serial it was issued to, or null when unknown, expired or already used.</summary>
    Task<string?> ConsumeAsync(string nonce, CancellationToken cancellationToken = default);
}

internal static class Nonce
{
    public static string New() => Base64Url(RandomNumberGenerator.GetBytes(32));

    public static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

/// <summary>In process (one attestation node): bounded; expired nonces are swept when the bound is reached.</summary>
public sealed class InMemoryNonceStore(TimeProvider timeProvider, int capacity = 100_000) : INonceStore
{
    private readonly ConcurrentDictionary<string, (string Serial, long ExpiresTicks)> _nonces = new(StringComparer.Ordinal);

    public Task<string> IssueAsync(string serial, TimeSpan lifetime, CancellationToken cancellationToken = default)
    {
        var now = timeProvider.GetUtcNow().UtcTicks;
        if (_nonces.Count >= capacity)
        {
            foreach (var pair in _nonces)
            {
                if (pair.Value.ExpiresTicks <= now)
                {
                    _nonces.TryRemove(pair);
                }
            }

            if (_nonces.Count >= capacity)
            {
                throw new InvalidOperationException($"More than {capacity} nonces are outstanding; refusing to issue more until some expire.");
            }
        }

        var nonce = Nonce.New();
        _nonces[nonce] = (serial, now + lifetime.Ticks);
        return Task.FromResult(nonce);
    }

    public Task<string?> ConsumeAsync(string nonce, CancellationToken cancellationToken = default)
        => Task.FromResult(_nonces.TryRemove(nonce, out var entry) && entry.ExpiresTicks > timeProvider.GetUtcNow().UtcTicks ? entry.Serial : null);
}

/// <summary>In Redis (several attestation nodes): SET NX PX to issue, GETDEL to consume (atomic single use).</summary>
public sealed class RedisNonceStore(RedisConnection redis, string keyPrefix = "zt:nonce:") : INonceStore
{
    public async Task<string> IssueAsync(string serial, TimeSpan lifetime, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var nonce = Nonce.New();
        if (!await (await redis.DatabaseAsync()).StringSetAsync(keyPrefix + nonce, serial, lifetime, When.NotExists))
        {
            throw new InvalidOperationException("Nonce collision in Redis.");
        }

        return nonce;
    }

    public async Task<string?> ConsumeAsync(string nonce, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return (string?)await (await redis.DatabaseAsync()).StringGetDeleteAsync(keyPrefix + nonce);
    }
}
