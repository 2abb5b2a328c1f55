using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KtZeroTrust.Hosting.Devices;

/// <summary>How a quarantine ended.</summary>
public enum QuarantineOutcome
{
    /// <summary>The device is now suspended; the lifecycle decision is posted.</summary>
    Suspended,

    /// <summary>The registry refused the transition (already suspended, revoked, decommissioned or unknown): nothing to do.</summary>
    AlreadyOut,

    /// <summary>The registry did not answer in time or failed; the alert stands and an analyst acts on it.</summary>
    Failed,

    /// <summary>This node has no registry (it cannot suspend; the node with the registry's detectors can).</summary>
    NoRegistry,
}

/// <summary>
/// The one way a detection takes a device out of service, whether the request-time clone check or a fleet detector
/// found it: a registry transition to <c>suspended</c> (which every gateway node applies at once, open connections
/// included) with the detector as actor and the reason code first in the reason (denials carry it), then a lifecycle
/// decision. Bounded by <see cref="Timeout"/> and cancelled when the host stops; never throws for a registry failure.
/// </summary>
public sealed partial class DeviceQuarantine(
    IDecisionSink decisions,
    DecisionFactory factory,
    ILogger<DeviceQuarantine> logger,
    IDeviceRegistry? registry = null,
    IHostApplicationLifetime? lifetime = null)
{
    /// <summary>How long a suspension may wait for the registry.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public async Task<QuarantineOutcome> SuspendAsync(DecisionListener listener, string detector, ReasonCode reason, string serial, string detail, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(serial);
        if (registry is null)
        {
            LogNoRegistry(logger, serial, detector);
            return QuarantineOutcome.NoRegistry;
        }

        var actor = "detector:" + detector;
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime?.ApplicationStopping ?? CancellationToken.None);
        bounded.CancelAfter(Timeout);
        try
        {
            var record = await registry.TransitionAsync(serial, DeviceLifecycleState.Suspended, actor, $"{ReasonCodes.Name(reason)}: {detail}", bounded.Token);
            decisions.Post(factory.Lifecycle(listener, record.Serial, actor, $"suspended by {actor}: {detail}"));
            return QuarantineOutcome.Suspended;
        }
        catch (RegistryException ex)
        {
            LogAlreadyOut(logger, serial, actor, ex.Message);
            return QuarantineOutcome.AlreadyOut;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            LogFailed(logger, null, serial, actor, bounded.IsCancellationRequested && lifetime?.ApplicationStopping.IsCancellationRequested == true ? "the node is stopping" : $"no answer within {Timeout.TotalSeconds:0} s");
            return QuarantineOutcome.Failed;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogFailed(logger, ex, serial, actor, ex.Message); // a database down: the alert is in the stream, an analyst acts on it
            return QuarantineOutcome.Failed;
        }
    }

    [LoggerMessage(EventId = HostingEventIds.QuarantineSkipped, Level = LogLevel.Information, Message = "{Actor} did not suspend {Serial}: {Why}")]
    private static partial void LogAlreadyOut(ILogger logger, string serial, string actor, string why);

    [LoggerMessage(EventId = HostingEventIds.QuarantineFailed, Level = LogLevel.Error, Message = "{Actor} could not suspend {Serial}: {Why}; the alert stands")]
    private static partial void LogFailed(ILogger logger, Exception? exception, string serial, string actor, string why);

    [LoggerMessage(EventId = HostingEventIds.QuarantineNoRegistry, Level = LogLevel.Warning, Message = "detector:{Detector} found {Serial}, but this node has no registry to suspend it in")]
    private static partial void LogNoRegistry(ILogger logger, string serial, string detector);
}
