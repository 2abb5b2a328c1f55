namespace KtZeroTrust.Monitoring;

/// <summary>Log event ids of the monitoring feature (3000-3999). Never reuse a number.</summary>
internal static class MonitoringEventIds
{
    public const int PipelineDropped = 3010;
    public const int SinkFailed = 3011;
    public const int SinkRecovered = 3012;
    public const int SpoolFailed = 3013;
    public const int JournalFailed = 3014;
    public const int JournalRecovered = 3015;
    public const int CheckpointFailed = 3016;
    public const int DetectorFinding = 3020;
    // 3021 (detector suspension skipped): retired, the quarantine logs it (Hosting, 1063-1065).
    public const int DetectorRestored = 3022;
    public const int DetectorSnapshotUnreadable = 3023;
    public const int DetectorSaveFailed = 3024;
    public const int DetectorFailed = 3025;
    public const int DetectorLeading = 3026;
    public const int DetectorFollowing = 3027;
    public const int DetectorEntryUnreadable = 3028;
    public const int DetectorRedisFailed = 3029;
    public const int DetectorFeedFailed = 3030;
    public const int DecisionStoreMaintained = 3040;
    public const int DecisionStoreMaintenanceFailed = 3041;
    public const int DecisionStreamDisabled = 5021; // kept from the server host, which logged it before the pipeline registered itself
}
