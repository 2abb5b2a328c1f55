using KtZeroTrust.Core.Decisions;

namespace KtZeroTrust.Monitoring.Pipeline;

/// <summary>
/// Decisions by outcome and reason and a latency histogram, counted by the pipeline's single dispatcher (off the
/// request path, no locking: one writer; readers see each 64-bit count whole). Read by /metrics and OTLP.
/// </summary>
public sealed class DecisionCounters
{
    /// <summary>Upper bounds of the latency buckets, in microseconds (the last bucket is everything above).</summary>
    public static readonly double[] LatencyBoundsMicroseconds = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000];

    private static readonly int ReasonCount = Enum.GetValues<ReasonCode>().Length;
    private readonly long[] _byOutcomeReason = new long[ReasonCount * 2];
    private readonly long[] _latencyBuckets = new long[LatencyBoundsMicroseconds.Length + 1];
    private long _latencyCount;
    private double _latencySum;

    /// <summary>Only from the dispatcher.</summary>
    internal void Count(DecisionEvent e)
    {
        var reason = (int)e.Reason;
        if ((uint)reason < (uint)ReasonCount)
        {
            _byOutcomeReason[(reason * 2) + (e.Outcome == DecisionOutcome.Allow ? 0 : 1)]++;
        }

        if (e.Kind != DecisionKind.Access)
        {
            return; // latency is a property of access decisions
        }

        var bucket = Array.BinarySearch(LatencyBoundsMicroseconds, e.LatencyMicroseconds);
        _latencyBuckets[bucket >= 0 ? bucket : ~bucket]++;
        _latencySum += e.LatencyMicroseconds;
        _latencyCount++;
    }

    /// <summary>Every (outcome, reason) seen so far with its count.</summary>
    public IEnumerable<(DecisionOutcome Outcome, ReasonCode Reason, long Count)> ByOutcomeAndReason()
    {
        for (var i = 0; i < _byOutcomeReason.Length; i++)
        {
            var count = Volatile.Read(ref _byOutcomeReason[i]);
            if (count > 0)
            {
                yield return (i % 2 == 0 ? DecisionOutcome.Allow : DecisionOutcome.Deny, (ReasonCode)(i / 2), count);
            }
        }
    }

    /// <summary>Per-bucket (not cumulative) counts, the last being above the highest bound.</summary>
    public long[] LatencyBuckets() => [.. _latencyBuckets.Select((_, i) => Volatile.Read(ref _latencyBuckets[i]))];

    public long LatencyCount => Volatile.Read(ref _latencyCount);

    public double LatencySumMicroseconds => Volatile.Read(ref _latencySum);
}
