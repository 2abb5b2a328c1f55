namespace KtZeroTrust.Monitoring;

/// <summary>Log event ids of the monitoring feature (3000-3999). Never reuse a number.</summary>
internal static class MonitoringEventIds
{
    public const int PipelineDropped = 3010;
    public const int SinkFailed = 3011;
    public const int SinkRecovered = 3012;
    public const int SpoolFailed = 3013;
}
