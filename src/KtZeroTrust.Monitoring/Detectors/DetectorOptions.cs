using KtZeroTrust.Core.Devices;
namespace KtZeroTrust.Monitoring.Detectors;

/// <summary>The anomaly detectors reading the decision stream. Bound from <c>ZeroTrust:Detectors</c>.</summary>
public sealed class DetectorOptions
{
    public const string SectionName = "ZeroTrust:Detectors";

    public bool Enabled { get; set; } = true;

    /// <summary>The one clone rule's settings, shared with the gateway's request-time check (<see cref="CloneRule"/>).</summary>
    public CloneDetectionOptions Clone { get; set; } = new();

    public IdleOptions Idle { get; set; } = new();

    public SourcePrefixOptions SourcePrefix { get; set; } = new();

    public LocationDriftOptions LocationDrift { get; set; } = new();

    public DenialBurstOptions DenialBurst { get; set; } = new();

    /// <summary>How often the detection state is saved (and so how much a crash can make it forget). Default 10 s.</summary>
    public TimeSpan SnapshotInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// With no saved state (first start, or state lost), how far back in the Redis Stream detection is rebuilt from.
    /// Default 1 hour.
    /// </summary>
    public TimeSpan RebuildWindow { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Most devices and source addresses tracked at once; beyond it the stalest are forgotten. Default 1,000,000.</summary>
    public int MaxTracked { get; set; } = 1_000_000;

    /// <summary>What is wrong with these settings, each naming its key; empty when they are usable.</summary>
    public IEnumerable<string> Problems()
    {
        if (!Clone.IsValid)
        {
            yield return CloneDetectionOptions.Requirement;
        }

        if (Idle.After <= TimeSpan.Zero || Idle.SweepInterval < TimeSpan.FromSeconds(1))
        {
            yield return "ZeroTrust:Detectors:Idle: After must be positive and SweepInterval at least 1 s.";
        }

        if (SourcePrefix.RepeatAfter < TimeSpan.Zero)
        {
            yield return "ZeroTrust:Detectors:SourcePrefix:RepeatAfter must not be negative.";
        }

        if (!(LocationDrift.MaxMeters > 0))
        {
            yield return "ZeroTrust:Detectors:LocationDrift:MaxMeters must be positive.";
        }

        if (DenialBurst.Threshold < 1 || DenialBurst.Window <= TimeSpan.Zero)
        {
            yield return "ZeroTrust:Detectors:DenialBurst: Threshold and Window must be positive.";
        }

        if (SnapshotInterval < TimeSpan.FromMilliseconds(100) || RebuildWindow < TimeSpan.Zero || MaxTracked < 1)
        {
            yield return "ZeroTrust:Detectors: SnapshotInterval must be at least 100 ms, RebuildWindow not negative, MaxTracked positive.";
        }
    }

    /// <summary>An active unit not seen for longer than <see cref="After"/>: a retired or stolen unit's credential, still valid.</summary>
    public sealed class IdleOptions
    {
        public bool Enabled { get; set; } = true;

        public TimeSpan After { get; set; } = TimeSpan.FromDays(30);

        public bool SuspendDevice { get; set; } = true;

        public TimeSpan SweepInterval { get; set; } = TimeSpan.FromHours(1);
    }

    /// <summary>A device allowed in from outside its site's allowed source prefixes (a moved or stolen unit).</summary>
    public sealed class SourcePrefixOptions
    {
        public bool Enabled { get; set; } = true;

        public bool SuspendDevice { get; set; }

        /// <summary>One alert per device per this period. Default 10 minutes.</summary>
        public TimeSpan RepeatAfter { get; set; } = TimeSpan.FromMinutes(10);
    }

    /// <summary>A re-attestation reporting a position far from the device's previous one.</summary>
    public sealed class LocationDriftOptions
    {
        public bool Enabled { get; set; } = true;

        public double MaxMeters { get; set; } = 1_000;

        public bool SuspendDevice { get; set; }
    }

    /// <summary>Many denials from one source address in a short time (scanning, a rogue unit retrying, credential stuffing).</summary>
    public sealed class DenialBurstOptions
    {
        public bool Enabled { get; set; } = true;

        public int Threshold { get; set; } = 20;

        public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(1);
    }
}
