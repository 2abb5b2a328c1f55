using System.Collections.Concurrent;

namespace KtZeroTrust.Redis;

/// <summary>
/// One multiplexed client per Redis configuration for the whole process: the allow list, nonces and the decision
/// stream share a connection instead of each opening its own. Clients never abort on a failed first connect (they keep
/// reconnecting), so a node starts while Redis is away and each feature degrades in its own way.
/// </summary>
public sealed class RedisConnections : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Task<RedisClient>>> _clients = new(StringComparer.Ordinal);

    public Task<RedisClient> GetAsync(string configuration)
        => _clients.GetOrAdd(configuration, c => new Lazy<Task<RedisClient>>(() =>
        {
            var options = RedisOptions.Parse(c);
            options.AbortOnConnectFail = false;
            return RedisClient.ConnectAsync(options);
        })).Value;

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients.Values.Where(l => l.IsValueCreated))
        {
            await (await client.Value).DisposeAsync();
        }
    }
}
