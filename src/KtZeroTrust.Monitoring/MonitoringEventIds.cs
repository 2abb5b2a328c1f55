namespace KtZeroTrust.Monitoring;

/// <summary>Log event ids of the monitoring feature (3000-3999). Never reuse a number.</summary>
internal static class MonitoringEventIds
{
    public const int DecisionLogStarted = 3000;
    public const int DecisionLogWriteFailed = 3001;
}
