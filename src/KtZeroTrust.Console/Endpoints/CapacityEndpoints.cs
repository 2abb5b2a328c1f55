using System.Net;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Core.Networks;
using KtZeroTrust.Hosting.Metrics;
using KtZeroTrust.Monitoring.Store;
using KtZeroTrust.SocConsole.Authentication;
using KtZeroTrust.SocConsole.Decisions;
using static KtZeroTrust.SocConsole.Endpoints.ConsoleResults;

namespace KtZeroTrust.SocConsole.Endpoints;

/// <summary>
/// The enrollment and handshake capacity panel: per bucket, attestation and enrollment requests served, deferred
/// (<c>enrollment_deferred</c>) and device handshakes shed (<c>listener_busy</c>), read from the stored decisions of
/// every node; who was deferred (by site, source prefix and node) and shed; and this process's own admission gauges.
/// </summary>
internal static class CapacityEndpoints
{
    /// <summary>Refusals read per answer for the breakdowns; beyond it the breakdown says it is of the newest ones.</summary>
    internal const int SampleLimit = 5000;

    public static void Map(RouteGroupBuilder api) => api.MapGet("/capacity", CapacityAsync).RequireAuthorization(ConsolePolicies.Analyst);

    private static async Task<IResult> CapacityAsync(HttpContext context, ConsoleDecisions decisions, IDeviceRegistry registry, IEnumerable<INodeMetricSource> sources,
        TimeProvider time, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var (span, bucket) = context.Request.Query["range"].ToString() switch
        {
            "" or "hour" => (TimeSpan.FromHours(1), TimeSpan.FromMinutes(1)),
            "day" => (TimeSpan.FromDays(1), TimeSpan.FromMinutes(30)),
            _ => (TimeSpan.Zero, TimeSpan.Zero),
        };
        if (span == TimeSpan.Zero)
        {
            return Problem(StatusCodes.Status400BadRequest, "range is hour or day.");
        }

        var width = (long)bucket.TotalSeconds;
        var until = DateTimeOffset.FromUnixTimeSeconds((now.ToUnixTimeSeconds() + width - 1) / width * width);
        var since = until - span;
        var deferred = await decisions.QueryAsync(new DecisionFilter { Reason = ReasonCodes.Name(ReasonCode.EnrollmentDeferred), Since = since, Limit = SampleLimit }, ct);
        var shed = await decisions.QueryAsync(new DecisionFilter { Reason = ReasonCodes.Name(ReasonCode.ListenerBusy), Since = since, Limit = SampleLimit }, ct);

        var buckets = new List<object>();
        if (decisions.Store is { } store)
        {
            var counts = (await store.CountAsync(since, until, bucket, ct)).ToLookup(c => c.Bucket);
            for (var at = since; at < until; at += bucket)
            {
                var here = counts[at].ToList();
                buckets.Add(new
                {
                    at,
                    served = here.Where(c => c.Kind is "attestation" or "enrollment" && c.Outcome == DecisionOutcome.Allow).Sum(c => c.Count),
                    deferred = here.Where(c => c.Reason == "enrollment_deferred").Sum(c => c.Count),
                    shed = here.Where(c => c.Reason == "listener_busy").Sum(c => c.Count),
                });
            }
        }

        // Sites from the registry, one read (as the map does): a deferral's subject is the unit the CA was asked about.
        var siteOf = deferred.Count == 0 ? new Dictionary<string, string>()
            : (await registry.ListAsync(null, ct)).Where(d => d.Site is not null).ToDictionary(d => d.Serial, d => d.Site!, StringComparer.Ordinal);
        return Results.Json(new
        {
            range = span == TimeSpan.FromHours(1) ? "hour" : "day",
            stored = decisions.Store is not null,
            since,
            until,
            bucketSeconds = width,
            buckets,
            deferred = Breakdown(deferred, d => d.Subject is { } s && siteOf.TryGetValue(s, out var site) ? site : "(no site)"),
            shed = Breakdown(shed, null),
            node = sources.SelectMany(s => s.Metrics)
                .Where(m => m.Name.StartsWith("ktzt_admission_", StringComparison.Ordinal) || m.Name.StartsWith("ktzt_device_handshakes_", StringComparison.Ordinal))
                .ToDictionary(m => m.Name, m => m.Read()),
        });
    }

    private static object Breakdown(IReadOnlyList<Monitoring.DecisionLog.JournaledDecision> refusals, Func<DecisionEvent, string>? site) => new
    {
        sampled = refusals.Count,
        complete = refusals.Count < SampleLimit,
        bySite = site is null ? null : Top(refusals.Select(r => site(r.Event))),
        byPrefix = Top(refusals.Select(r => SourcePrefixes.GroupOf(IPAddress.TryParse(r.Event.SourceAddress, out var a) ? a : null))),
        byNode = Top(refusals.Select(r => r.Event.Node ?? "-")),
    };

    private static IEnumerable<object> Top(IEnumerable<string> keys)
        => keys.GroupBy(k => k, StringComparer.Ordinal).Select(g => new { key = g.Key, count = g.Count() }).OrderByDescending(g => g.count).ThenBy(g => g.key, StringComparer.Ordinal).Take(10);
}
