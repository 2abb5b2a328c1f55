using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Pipeline;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KtZeroTrust.Monitoring.Store;

/// <summary>
/// The decision store as a lane of the pipeline: like every lane, a batch the database does not take (down, full) is
/// spooled and replayed in order; the store's per-node high-water mark makes the replay exactly once.
/// </summary>
public sealed class DecisionStoreSink(IDecisionStore store) : IDecisionExportSink
{
    public string Name => "decision-store";

    public Task WriteBatchAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken) => store.WriteAsync(batch, cancellationToken);
}

/// <summary>Retention and the days ahead: at start, then hourly (a failure is logged and tried again in a minute).</summary>
internal sealed partial class DecisionStoreMaintenance(IDecisionStore store, DecisionStoreOptions options, TimeProvider time, ILogger<DecisionStoreMaintenance> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var wait = TimeSpan.FromHours(1);
            try
            {
                var now = time.GetUtcNow();
                var removed = await store.MaintainAsync(now, now.AddDays(-options.RetentionDays), stoppingToken);
                LogMaintained(logger, options.RetentionDays, removed);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogMaintenanceFailed(logger, ex);
                wait = TimeSpan.FromMinutes(1);
            }

            try
            {
                await Task.Delay(wait, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    [LoggerMessage(EventId = MonitoringEventIds.DecisionStoreMaintained, Level = LogLevel.Information, Message = "Decision store: retention {Days} days applied ({Removed} partitions or rows removed)")]
    private static partial void LogMaintained(ILogger logger, int days, long removed);

    [LoggerMessage(EventId = MonitoringEventIds.DecisionStoreMaintenanceFailed, Level = LogLevel.Warning, Message = "Decision store: retention and partitions could not be applied; trying again in a minute")]
    private static partial void LogMaintenanceFailed(ILogger logger, Exception exception);
}
