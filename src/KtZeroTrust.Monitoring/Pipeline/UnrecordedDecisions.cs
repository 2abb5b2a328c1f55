using KtZeroTrust.Core.Decisions;
using Microsoft.Extensions.Logging;

namespace KtZeroTrust.Monitoring.Pipeline;

/// <summary><c>ZeroTrust:DecisionStream:Enabled=false</c>: decisions are dropped. Exists for measurement; never for production.</summary>
internal sealed partial class UnrecordedDecisions : IDecisionSink, IDecisionDurability
{
    public UnrecordedDecisions(ILogger<UnrecordedDecisions> logger) => LogDecisionStreamDisabled(logger);

    public long Posted => 0;

    public void Post(DecisionEvent decision)
    {
    }

    public ValueTask WaitDurableAsync(long posted) => ValueTask.CompletedTask;

    [LoggerMessage(EventId = MonitoringEventIds.DecisionStreamDisabled, Level = LogLevel.Critical, Message = "ZeroTrust:DecisionStream:Enabled is false: no decision is recorded, exported or seen by the detectors (measurement only)")]
    private static partial void LogDecisionStreamDisabled(ILogger logger);
}
