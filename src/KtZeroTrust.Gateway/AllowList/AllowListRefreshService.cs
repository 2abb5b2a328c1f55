using KtZeroTrust.Core.AllowList;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Gateway.AllowList;

/// <summary>
/// The embedded feed (no Redis): reads the registry's change counter and applies only what changed since the cache's
/// version. A registry that cannot be read leaves the cache as it is. Called on a timer, and right after this
/// process's own registry writes (so an enrollment is usable at once).
/// </summary>
public sealed partial class RegistryAllowListFeed(
    IAllowListSource source,
    AllowListCache cache,
    AllowListUpdates updates,
    ILogger<RegistryAllowListFeed> logger) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private int _loaded;

    /// <summary>True once the registry has been read successfully (the allow list holds what it held then, or newer).</summary>
    public bool Loaded => Volatile.Read(ref _loaded) == 1;

    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (await source.GetVersionAsync(cancellationToken) == cache.Version)
            {
                Volatile.Write(ref _loaded, 1);
                return;
            }

            var changes = await source.LoadAllowListChangesAsync(cache.Version, cancellationToken);
            var applied = updates.Apply(changes.Entries);
            cache.RaiseVersion(changes.Version);
            Volatile.Write(ref _loaded, 1);
            LogLoaded(logger, applied, cache.Count, changes.Version);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRefreshFailed(logger, ex, cache.Version);
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();

    [LoggerMessage(EventId = GatewayEventIds.AllowListLoaded, Level = LogLevel.Information, Message = "Allow list updated from the registry: {Changed} changed, {Count} certificates, registry version {Version}")]
    private static partial void LogLoaded(ILogger logger, int changed, int count, long version);

    [LoggerMessage(EventId = GatewayEventIds.AllowListRefreshFailed, Level = LogLevel.Error, Message = "Allow list refresh failed; keeping registry version {Version}")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception, long version);
}

/// <summary>Runs the embedded feed: once before the server accepts traffic, then every poll interval.</summary>
internal sealed class AllowListRefreshService(RegistryAllowListFeed feed, IOptions<AllowListOptions> options, TimeProvider timeProvider) : BackgroundService
{
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // Load once before Kestrel starts so the first device request is judged on real data.
        await feed.RefreshAsync(cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.RegistryPollInterval, timeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await feed.RefreshAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
