using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Hosting.Devices;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KtZeroTrust.Monitoring.Detectors;

/// <summary>Where the detectors' state is kept between runs: a file (embedded) or a Redis key (shared by the nodes).</summary>
public interface IDetectorStateStore
{
    Task<string?> LoadAsync(CancellationToken cancellationToken);

    Task SaveAsync(string snapshot, CancellationToken cancellationToken);
}

/// <summary>Delivers the decision stream to the detectors. Null feed: the pipeline's <see cref="DetectorFeedSink"/> does.</summary>
public interface IDetectorFeed
{
    Task RunAsync(DetectorService detectors, CancellationToken stoppingToken);
}

/// <summary>
/// Runs the anomaly detectors over the decision stream: each finding becomes an alert event in the stream and, where
/// configured, the device is suspended through the registry (which every gateway node applies at once, open connections
/// included), itself a lifecycle event. The state is saved periodically and on shutdown and restored on start; with
/// Redis, one node at a time (a leader) reads the shared stream and the state lives in Redis, so another node takes
/// over where the last left off.
/// </summary>
public sealed partial class DetectorService(
    DetectorEngine engine,
    IDetectorStateStore store,
    IDecisionSink decisions,
    DecisionFactory decisionFactory,
    DeviceQuarantine quarantine,
    DetectorOptions options,
    TimeProvider timeProvider,
    ILogger<DetectorService> logger,
    IDetectorFeed? feed = null) : BackgroundService
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private bool _restored;
    private bool _stopped;
    private long _lastSaveTicks;
    private long _lastSweepTicks;
    private long _observed;
    private long _findings;

    /// <summary>False while another node leads (Redis mode): this node then neither sweeps nor saves.</summary>
    public bool Active { get; set; } = feed is null;

    public DetectorEngine Engine => engine;

    public long Observed => Interlocked.Read(ref _observed);

    public long Findings => Interlocked.Read(ref _findings);

    /// <summary>Feeds events (in stream order) to the detectors and acts on what they find.</summary>
    public async Task ProcessAsync(IReadOnlyList<DecisionEvent> batch, string? position, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        await LockedAsync(async () =>
        {
            if (_stopped)
            {
                // After shutdown began: refuse, so the pipeline keeps the batch in its spool for the next run.
                throw new InvalidOperationException("The detectors have stopped.");
            }

            await EnsureRestoredAsync(cancellationToken);
            foreach (var e in batch)
            {
                foreach (var finding in await engine.ObserveAsync(e, cancellationToken))
                {
                    await ActAsync(finding, cancellationToken);
                }
            }

            Interlocked.Add(ref _observed, batch.Count);
            if (position is not null)
            {
                engine.Position = position;
            }

            if (timeProvider.GetUtcNow().UtcTicks - _lastSaveTicks >= options.SnapshotInterval.Ticks)
            {
                await SaveLockedAsync(cancellationToken);
            }
        }, cancellationToken);
    }

    /// <summary>Throws the state away and loads the saved one (a node becoming the leader takes over the last leader's state).</summary>
    public Task ReloadAsync(CancellationToken cancellationToken) => LockedAsync(() =>
    {
        _restored = false;
        return EnsureRestoredAsync(cancellationToken);
    }, cancellationToken);

    /// <summary>Runs the idle sweep now (it also runs on its interval).</summary>
    public Task SweepAsync(CancellationToken cancellationToken) => LockedAsync(async () =>
    {
        await EnsureRestoredAsync(cancellationToken);
        _lastSweepTicks = timeProvider.GetUtcNow().UtcTicks;
        foreach (var finding in await engine.SweepIdleAsync(cancellationToken))
        {
            await ActAsync(finding, cancellationToken);
        }
    }, cancellationToken);

    /// <summary>Saves the state now (it is also saved on its interval and at shutdown).</summary>
    public Task SaveAsync(CancellationToken cancellationToken) => LockedAsync(() => SaveLockedAsync(cancellationToken), cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var feeding = feed?.RunAsync(this, stoppingToken) ?? Task.CompletedTask;
        var tick = TimeSpan.FromTicks(Math.Min(options.SnapshotInterval.Ticks, options.Idle.SweepInterval.Ticks));
        using var timer = new PeriodicTimer(tick, timeProvider);
        try
        {
            do
            {
                try
                {
                    if (Active && timeProvider.GetUtcNow().UtcTicks - _lastSweepTicks >= options.Idle.SweepInterval.Ticks)
                    {
                        await SweepAsync(stoppingToken);
                    }

                    if (Active && timeProvider.GetUtcNow().UtcTicks - _lastSaveTicks >= options.SnapshotInterval.Ticks)
                    {
                        await SaveAsync(stoppingToken);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogDetectorFailed(logger, ex); // the registry or the store is away: try again at the next tick
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await feeding;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await LockedAsync(async () =>
        {
            if (Active && _restored)
            {
                await SaveLockedAsync(cancellationToken);
            }

            _stopped = true;
        }, cancellationToken);
    }

    /// <summary>One operation on the state at a time: the feed, the timer and shutdown all go through here.</summary>
    private async Task LockedAsync(Func<Task> operation, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await operation();
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task EnsureRestoredAsync(CancellationToken cancellationToken)
    {
        if (_restored)
        {
            return;
        }

        _restored = true;
        if (await store.LoadAsync(cancellationToken) is not { Length: > 0 } saved)
        {
            return;
        }

        try
        {
            engine.Restore(saved);
            LogRestored(logger, engine.TrackedDevices, engine.Position ?? "-");
        }
        catch (System.Text.Json.JsonException ex)
        {
            LogSnapshotUnreadable(logger, ex); // start empty; with Redis the state is rebuilt from the stream's recent past
        }
    }

    private async Task SaveLockedAsync(CancellationToken cancellationToken)
    {
        _lastSaveTicks = timeProvider.GetUtcNow().UtcTicks;
        try
        {
            await store.SaveAsync(engine.Snapshot(), cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException || KtZeroTrust.Redis.RedisFailure.Is(ex))
        {
            LogSaveFailed(logger, ex); // kept in memory; the next save tries again
        }
    }

    private async Task ActAsync(Finding finding, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _findings);
        LogFinding(logger, finding.Detector, finding.Subject ?? "-", finding.SourceAddress ?? "-", finding.Detail);
        decisions.Post(decisionFactory.Alert(DecisionListener.Detector, finding.Reason, finding.Subject,
            new DecisionOrigin(finding.SourceAddress, Route: "detector:" + finding.Detector), finding.Detail));

        if (finding.Suspend && finding.Subject is not null)
        {
            await quarantine.SuspendAsync(DecisionListener.Detector, finding.Detector, finding.Reason, finding.Subject, finding.Detail, cancellationToken);
        }
    }

    [LoggerMessage(EventId = MonitoringEventIds.DetectorFinding, Level = LogLevel.Warning, Message = "Detector {Detector}: {Subject} from {Source}: {Detail}")]
    private static partial void LogFinding(ILogger logger, string detector, string subject, string source, string detail);

    [LoggerMessage(EventId = MonitoringEventIds.DetectorRestored, Level = LogLevel.Information, Message = "Detector state restored: {Devices} devices, stream position {Position}")]
    private static partial void LogRestored(ILogger logger, int devices, string position);

    [LoggerMessage(EventId = MonitoringEventIds.DetectorSnapshotUnreadable, Level = LogLevel.Error, Message = "Detector state snapshot unreadable; starting from empty state")]
    private static partial void LogSnapshotUnreadable(ILogger logger, Exception exception);

    [LoggerMessage(EventId = MonitoringEventIds.DetectorSaveFailed, Level = LogLevel.Warning, Message = "Detector state could not be saved")]
    private static partial void LogSaveFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = MonitoringEventIds.DetectorFailed, Level = LogLevel.Warning, Message = "Detector sweep or save failed; retrying at the next tick")]
    private static partial void LogDetectorFailed(ILogger logger, Exception exception);
}
