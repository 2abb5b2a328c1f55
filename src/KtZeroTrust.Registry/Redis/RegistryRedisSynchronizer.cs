using KtZeroTrust.Core.AllowList;

namespace KtZeroTrust.Registry.Redis;

/// <summary>
/// Brings Redis up to the registry: writes every entry changed since the version Redis holds, publishes them to every
/// node, then records the new version. Idempotent and safe to run from several processes at once (writes keep the
/// newer version; a duplicate message changes nothing). Run after every registry write (write-through), at start,
/// and periodically as a safety net for writers that could not reach Redis.
/// </summary>
public sealed class RegistryRedisSynchronizer(IAllowListSource registry, RedisAllowListStore store, TimeProvider timeProvider) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Returns how many entries were pushed (0 when Redis was already current).</summary>
    public async Task<int> SyncAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var synced = await store.GetSyncedVersionAsync(cancellationToken);
            if (await registry.GetVersionAsync(cancellationToken) <= synced)
            {
                return 0;
            }

            var changes = await registry.LoadAllowListChangesAsync(synced, cancellationToken);
            for (var i = 0; i < changes.Entries.Count; i += 10_000)
            {
                var chunk = changes.Entries.Skip(i).Take(10_000).ToList();
                await store.WriteAsync(chunk, timeProvider.GetUtcNow(), cancellationToken);
                await store.PublishAsync(chunk, cancellationToken);
            }

            await store.RaiseSyncedVersionAsync(changes.Version, cancellationToken);
            return changes.Entries.Count;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();
}
