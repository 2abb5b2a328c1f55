using KtZeroTrust.Core.AllowList;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Gateway.AllowList;

/// <summary>
/// Feeds the allow list from the registry: loads it before the server accepts traffic, then polls the registry's
/// change counter and reloads on change. (The Redis allow-list work replaces polling with pushed invalidations.)
/// A registry that cannot be read leaves the last snapshot in place and is retried.
/// </summary>
internal sealed partial class AllowListRefreshService(
    IAllowListSource source,
    AllowListCache cache,
    IOptions<DeviceGatewayOptions> options,
    TimeProvider timeProvider,
    ILogger<AllowListRefreshService> logger) : BackgroundService
{
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // Load once before Kestrel starts so the first device request is judged on real data.
        await RefreshAsync(force: true, cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.AllowListRefreshInterval, timeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await RefreshAsync(force: false, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    internal async Task RefreshAsync(bool force, CancellationToken cancellationToken)
    {
        try
        {
            var version = await source.GetVersionAsync(cancellationToken);
            if (!force && version == cache.Version)
            {
                return;
            }

            var entries = await source.LoadAllowListAsync(cancellationToken);
            cache.Replace(entries, version);
            LogLoaded(logger, entries.Count, version);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRefreshFailed(logger, ex, cache.Version);
        }
    }

    [LoggerMessage(EventId = GatewayEventIds.AllowListLoaded, Level = LogLevel.Information, Message = "Allow list loaded: {Count} certificates, registry version {Version}")]
    private static partial void LogLoaded(ILogger logger, int count, long version);

    [LoggerMessage(EventId = GatewayEventIds.AllowListRefreshFailed, Level = LogLevel.Error, Message = "Allow list refresh failed; keeping registry version {Version}")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception, long version);
}
