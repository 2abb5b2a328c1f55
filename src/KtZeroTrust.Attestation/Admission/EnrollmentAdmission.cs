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

    /// <summary>Share of <see cref="MaxInFlight"/> the units of one install site may hold (a site's units may sit behind many prefixes). Default 0.5.</summary>
    public double SiteShare { get; set; } = 0.5;

    /// <summary>The Retry-After a deferred unit is given; each answer adds up to as much again at random, to spread the retries. Default 10 s.</summary>
    public int RetryAfterSeconds { get; set; } = 10;
}

/// <summary>
/// Admission control for the CA's expensive steps (evidence appraisal, EST enrollment): a request beyond the node's
/// capacity, or beyond its source prefix's or its unit's site's share of it, is not queued: it is answered at once with a deferral
/// (EST: 202 Accepted + Retry-After, RFC 7030 4.2.3; attestation: 429 + Retry-After), so a storm costs the CA a refusal
/// per excess request instead of memory and time, and units come back spread out.
/// </summary>
public sealed class EnrollmentAdmission(IOptions<AttestationOptions> options) : KtZeroTrust.Hosting.Metrics.INodeMetricSource
{
    // Slots held per source prefix ("p:10.1.1.0/24") and per site ("s:SITE-01"): one map, removed when idle.
    private readonly ConcurrentDictionary<string, int> _perShare = new(StringComparer.Ordinal);
    private int _inFlight;
    private int _peakInFlight;
    private long _deferredFull;
    private long _deferredPrefix;
    private long _deferredSite;

    private AdmissionOptions Options => options.Value.Admission;

    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Every deferral, whatever its cause.</summary>
    public long Deferred => Interlocked.Read(ref _deferredFull) + Interlocked.Read(ref _deferredPrefix) + Interlocked.Read(ref _deferredSite);

    /// <summary>The most ever in progress at once: never above MaxInFlight, however hard the storm (what bounds the CA's memory and CPU).</summary>
    public int PeakInFlight => Volatile.Read(ref _peakInFlight);

    /// <summary>A slot for a request from <paramref name="source"/> by a unit of <paramref name="site"/>, or null (counted as deferred).</summary>
    public Lease? TryEnter(IPAddress? source, string? site = null) => TryEnter(source, site, out _);

    /// <summary>A slot, or null with why: the node is full, or the source prefix or the site holds its share.</summary>
    public Lease? TryEnter(IPAddress? source, string? site, out DeferralCause cause)
    {
        var inFlight = Interlocked.Increment(ref _inFlight);
        if (inFlight > Options.MaxInFlight)
        {
            Interlocked.Decrement(ref _inFlight);
            return Defer(cause = DeferralCause.NodeFull);
        }

        for (var peak = Volatile.Read(ref _peakInFlight); inFlight > peak; peak = Volatile.Read(ref _peakInFlight))
        {
            Interlocked.CompareExchange(ref _peakInFlight, inFlight, peak);
        }

        var prefix = "p:" + KtZeroTrust.Core.Networks.SourcePrefixes.GroupOf(source);
        if (!TakeShare(prefix, Options.PrefixShare))
        {
            Interlocked.Decrement(ref _inFlight);
            return Defer(cause = DeferralCause.PrefixShare);
        }

        var siteKey = site is null ? null : "s:" + site;
        if (siteKey is not null && !TakeShare(siteKey, Options.SiteShare))
        {
            GiveShare(prefix);
            Interlocked.Decrement(ref _inFlight);
            return Defer(cause = DeferralCause.SiteShare);
        }

        cause = DeferralCause.None;
        return new Lease(this, prefix, siteKey);
    }

    /// <summary>On /metrics and over OTLP: how full the node is, and how often it deferred.</summary>
    public IReadOnlyList<KtZeroTrust.Hosting.Metrics.NodeMetric> Metrics => field ??=
    [
        new("ktzt_admission_in_flight", "Evidence appraisals and enrollments in progress on this node.", false, () => InFlight),
        new("ktzt_admission_in_flight_peak", "The most appraisals and enrollments ever in progress at once on this node.", false, () => PeakInFlight),
        new("ktzt_admission_capacity", "Appraisals and enrollments this node works on at once (Admission:MaxInFlight).", false, () => Options.MaxInFlight),
        new("ktzt_admission_deferred_total", "Requests answered with a deferral (EST 202, attestation 429, CMP waiting or pollRep).", true, () => Deferred),
        new("ktzt_admission_deferred_prefix_total", "Deferrals because the request's source prefix held its share (Admission:PrefixShare).", true, () => Interlocked.Read(ref _deferredPrefix)),
        new("ktzt_admission_deferred_site_total", "Deferrals because the unit's site held its share (Admission:SiteShare).", true, () => Interlocked.Read(ref _deferredSite)),
    ];

    /// <summary>What a deferred unit is told.</summary>
    public static string Describe(DeferralCause cause) => cause switch
    {
        DeferralCause.PrefixShare => "The CA is busy and this source prefix holds its share of it",
        DeferralCause.SiteShare => "The CA is busy and this unit's site holds its share of it",
        _ => "The CA is at capacity",
    };

    /// <summary>Seconds to come back after: the configured wait plus up to as much again at random.</summary>
    public int RetryAfterSeconds() => Options.RetryAfterSeconds + Random.Shared.Next(0, Options.RetryAfterSeconds + 1);

    private Lease? Defer(DeferralCause cause)
    {
        _ = cause switch
        {
            DeferralCause.PrefixShare => Interlocked.Increment(ref _deferredPrefix),
            DeferralCause.SiteShare => Interlocked.Increment(ref _deferredSite),
            _ => Interlocked.Increment(ref _deferredFull),
        };
        return null;
    }

    private bool TakeShare(string key, double share)
    {
        var limit = Math.Max(1, (int)(Options.MaxInFlight * share));
        if (_perShare.AddOrUpdate(key, 1, (_, n) => n + 1) <= limit)
        {
            return true;
        }

        GiveShare(key);
        return false;
    }

    private void GiveShare(string key)
    {
        _perShare.AddOrUpdate(key, 0, (_, n) => n - 1);
        _perShare.TryRemove(KeyValuePair.Create(key, 0)); // an idle prefix or site costs nothing
    }

    private void Release(string prefix, string? site)
    {
        if (site is not null)
        {
            GiveShare(site);
        }

        GiveShare(prefix);
        Interlocked.Decrement(ref _inFlight);
    }

    public sealed class Lease(EnrollmentAdmission admission, string prefix, string? site) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                admission.Release(prefix, site);
            }
        }
    }
}

/// <summary>Why a request was deferred.</summary>
public enum DeferralCause
{
    None,
    NodeFull,
    PrefixShare,
    SiteShare,
}
