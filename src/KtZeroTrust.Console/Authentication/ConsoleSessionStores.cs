using System.Collections.Concurrent;
using System.Text.Json;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.SocConsole.Authentication;

/// <summary>Where signed-in sessions live, by the SHA-256 of their token: this node's memory, or Redis shared by every console node.</summary>
public interface IConsoleSessionStore
{
    Task SaveAsync(string key, ConsoleSessions.Session session, CancellationToken cancellationToken);

    /// <summary>The session, or null; throws when the store cannot answer (the caller refuses: fail closed).</summary>
    Task<ConsoleSessions.Session?> FindAsync(string key, CancellationToken cancellationToken);

    Task RemoveAsync(string key, CancellationToken cancellationToken);
}

/// <summary>One node's sessions (the embedded default): a restart signs everyone out.</summary>
internal sealed class MemoryConsoleSessionStore : IConsoleSessionStore
{
    private readonly ConcurrentDictionary<string, ConsoleSessions.Session> _sessions = new(StringComparer.Ordinal);

    public Task SaveAsync(string key, ConsoleSessions.Session session, CancellationToken cancellationToken)
    {
        _sessions[key] = session;
        return Task.CompletedTask;
    }

    public Task<ConsoleSessions.Session?> FindAsync(string key, CancellationToken cancellationToken)
        => Task.FromResult(_sessions.TryGetValue(key, out var session) ? session : null);

    public Task RemoveAsync(string key, CancellationToken cancellationToken)
    {
        _sessions.TryRemove(key, out _);
        return Task.CompletedTask;
    }
}

/// <summary>
/// Sessions in Redis (<c>ZeroTrust:Console:Redis</c>), one key each expiring with the session: every console node
/// accepts every session, a node's restart signs nobody out, and a Sentinel failover keeps them (replicated).
/// </summary>
internal sealed class RedisConsoleSessionStore(RedisConnection connection, string prefix) : IConsoleSessionStore
{
    public async Task SaveAsync(string key, ConsoleSessions.Session session, CancellationToken cancellationToken)
    {
        var ttl = session.ExpiresAt - DateTimeOffset.UtcNow;
        if (ttl <= TimeSpan.Zero)
        {
            return;
        }

        var database = await connection.DatabaseAsync();
        await database.StringSetAsync(prefix + key, JsonSerializer.Serialize(session), ttl).WaitAsync(cancellationToken);
    }

    public async Task<ConsoleSessions.Session?> FindAsync(string key, CancellationToken cancellationToken)
    {
        var database = await connection.DatabaseAsync();
        var value = await database.StringGetAsync(prefix + key).WaitAsync(cancellationToken);
        return value.IsNullOrEmpty ? null : JsonSerializer.Deserialize<ConsoleSessions.Session>(value.ToString());
    }

    public async Task RemoveAsync(string key, CancellationToken cancellationToken)
    {
        var database = await connection.DatabaseAsync();
        await database.KeyDeleteAsync(prefix + key).WaitAsync(cancellationToken);
    }
}
