using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Attestation.Admission;

/// <summary>How many evidence appraisals and enrollments a node works on at once (<c>ZeroTrust:Attestation:Admission</c>).</summary>
public sealed class AdmissionOptions
{
    /// <summary>
    /// Appraisals and enrollments in progress at once on this node; beyond it they are deferred. Default 4 per core (8
    /// on 2 cores): measured in a 5x storm, 64 enrolled no faster than 8 but took the gateway's p99 from 153 to 846 ms
    /// on the same cores (bench/README.md, "Enrollment storms").
    /// </summary>
    public int MaxInFlight { get; set; } = 4 * Environment.ProcessorCount;

    /// <summary>Share of <see cref="MaxInFlight"/> one source prefix (IPv4 /24, IPv6 /48) may hold, so one region's storm leaves room for others. Default 0.5.</summary>
    public double PrefixShare { get; set; } = 0.5;

    /// <summary>The Retry-After a deferred unit is given; each answer adds up to as much again at random, to spread the retries. Default 10 s.</summary>
    public int RetryAfterSeconds { get; set; } = 10;
}

/// <summary>
/// Admission control for the CA's expensive steps (evidence appraisal, EST enrollment): a request beyond the node's
/// capacity, or beyond its source prefix's share of it, is not queued: it is answered at once with a deferral
/// (EST: 202 Accepted + Retry-After, RFC 7030 4.2.3; attestation: 429 + Retry-After), so a storm costs the CA a refusal
/// per excess request instead of memory and time, and units come back spread out.
/// </summary>
public sealed class EnrollmentAdmission(IOptions<AttestationOptions> options) : KtZeroTrust.Hosting.Metrics.INodeMetricSource
{
    private readonly ConcurrentDictionary<string, int> _perPrefix = new(StringComparer.Ordinal);
    private int _inFlight;
    private int _peakInFlight;
    private long _deferred;

    private AdmissionOptions Options => options.Value.Admission;

    public int InFlight => Volatile.Read(ref _inFlight);

    public long Deferred => Interlocked.Read(ref _deferred);

    /// <summary>The most ever in progress at once: never above MaxInFlight, however hard the storm (what bounds the CA's memory and CPU).</summary>
    public int PeakInFlight => Volatile.Read(ref _peakInFlight);

    /// <summary>A slot for a request from <paramref name="source"/>, or null when the node or the prefix is full (counted as deferred).</summary>
    public Lease? TryEnter(IPAddress? source)
    {
        var prefix = PrefixOf(source);
        var prefixLimit = Math.Max(1, (int)(Options.MaxInFlight * Options.PrefixShare));
        var inFlight = Interlocked.Increment(ref _inFlight);
        if (inFlight > Options.MaxInFlight)
        {
            Interlocked.Decrement(ref _inFlight);
            Interlocked.Increment(ref _deferred);
            return null;
        }

        for (var peak = Volatile.Read(ref _peakInFlight); inFlight > peak; peak = Volatile.Read(ref _peakInFlight))
        {
            Interlocked.CompareExchange(ref _peakInFlight, inFlight, peak);
        }

        if (_perPrefix.AddOrUpdate(prefix, 1, (_, n) => n + 1) > prefixLimit)
        {
            Release(prefix);
            Interlocked.Increment(ref _deferred);
            return null;
        }

        return new Lease(this, prefix);
    }

    /// <summary>On /metrics and over OTLP: how full the node is, and how often it deferred.</summary>
    public IReadOnlyList<KtZeroTrust.Hosting.Metrics.NodeMetric> Metrics => field ??=
    [
        new("ktzt_admission_in_flight", "Evidence appraisals and enrollments in progress on this node.", false, () => InFlight),
        new("ktzt_admission_in_flight_peak", "The most appraisals and enrollments ever in progress at once on this node.", false, () => PeakInFlight),
        new("ktzt_admission_capacity", "Appraisals and enrollments this node works on at once (Admission:MaxInFlight).", false, () => Options.MaxInFlight),
        new("ktzt_admission_deferred_total", "Requests answered with a deferral (EST 202, attestation 429, CMP waiting or pollRep).", true, () => Deferred),
    ];

    /// <summary>Seconds to come back after: the configured wait plus up to as much again at random.</summary>
    public int RetryAfterSeconds() => Options.RetryAfterSeconds + Random.Shared.Next(0, Options.RetryAfterSeconds + 1);

    private void Release(string prefix)
    {
        _perPrefix.AddOrUpdate(prefix, 0, (_, n) => n - 1);
        _perPrefix.TryRemove(KeyValuePair.Create(prefix, 0)); // an idle prefix costs nothing
        Interlocked.Decrement(ref _inFlight);
    }

    private static string PrefixOf(IPAddress? address)
    {
        if (address is null)
        {
            return "-";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        var bytes = address.GetAddressBytes();
        return bytes.Length == 4 ? $"{bytes[0]}.{bytes[1]}.{bytes[2]}.0/24" : $"{Convert.ToHexString(bytes, 0, 6)}/48";
    }

    public sealed class Lease(EnrollmentAdmission admission, string prefix) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                admission.Release(prefix);
            }
        }
    }
}
