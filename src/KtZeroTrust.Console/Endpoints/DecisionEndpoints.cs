using System.Text;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.SocConsole.Authentication;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Monitoring.Store;
using KtZeroTrust.SocConsole.Decisions;
using static KtZeroTrust.SocConsole.Endpoints.ConsoleResults;

namespace KtZeroTrust.SocConsole.Endpoints;

/// <summary>Decision queries, the live feed (server-sent events) and the last hour's summary.</summary>
internal static class DecisionEndpoints
{
    public static void Map(RouteGroupBuilder api)
    {
        api.MapGet("/decisions", async (HttpContext context, ConsoleDecisions decisions, IDeviceRegistry registry, CancellationToken ct) =>
            Results.Json((await decisions.QueryAsync(await DecisionQuery.FromAsync(context, registry), ct)).Select(RawDecisionJson.Of)))
            .RequireAuthorization(ConsolePolicies.Analyst);
        api.MapGet("/decisions/stream", StreamAsync).RequireAuthorization(ConsolePolicies.Analyst);
        api.MapGet("/summary", SummaryAsync).RequireAuthorization(ConsolePolicies.Analyst);
        api.MapGet("/decisions/export", ExportAsync).RequireAuthorization(ConsolePolicies.Analyst);
    }

    /// <summary>Bar widths the chart picks from, in minutes: the smallest that draws the range in at most 72 bars.</summary>
    private static readonly int[] BucketMinutes = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];

    /// <summary>
    /// Allowed and denied (by reason) per bucket over a range: <c>range=hour|day|week</c> ending now, or
    /// <c>since</c>/<c>until</c>. From the store's per-minute counts; without a store, the live feed's last hour.
    /// </summary>
    private static async Task<IResult> SummaryAsync(HttpContext context, ConsoleDecisions decisions, ConsoleFeed feed, TimeProvider time, CancellationToken ct)
    {
        var q = context.Request.Query;
        var now = time.GetUtcNow();
        var range = q["range"].ToString() is { Length: > 0 } r ? r : "hour";
        var (since, until) = range switch
        {
            "day" => (now.AddDays(-1), now),
            "week" => (now.AddDays(-7), now),
            "custom" when DateTimeOffset.TryParse(q["since"], System.Globalization.CultureInfo.InvariantCulture, out var from)
                && DateTimeOffset.TryParse(q["until"], System.Globalization.CultureInfo.InvariantCulture, out var to) && to > from && to - from <= TimeSpan.FromDays(366) => (from, to),
            "hour" => (now.AddHours(-1), now),
            _ => (DateTimeOffset.MinValue, DateTimeOffset.MinValue),
        };
        if (since == DateTimeOffset.MinValue)
        {
            return Problem(StatusCodes.Status400BadRequest, "range is hour, day, week, or custom with since < until (ISO 8601, at most a year apart).");
        }

        if (decisions.Store is not { } store)
        {
            var (perMinute, top) = feed.Summary();
            return Results.Json(new
            {
                range = "hour", stored = false, since = perMinute[0].Minute, until = perMinute[^1].Minute.AddMinutes(1), bucketSeconds = 60,
                buckets = perMinute.Select(m => new { at = m.Minute, allow = m.Allow, deny = m.Deny, denyByReason = new Dictionary<string, long>() }),
                topDenyReasons = top.Select(t => new { reason = t.Reason, count = t.Count }),
            });
        }

        var minutes = BucketMinutes.FirstOrDefault(m => (until - since).TotalMinutes / m <= 72, 1440);
        var bucket = TimeSpan.FromMinutes(minutes);
        // Whole bars: from the bar the range starts in to the end of the one it ends in (the current bar is partial).
        var width = (long)bucket.TotalSeconds;
        var start = DateTimeOffset.FromUnixTimeSeconds(since.ToUnixTimeSeconds() / width * width);
        until = DateTimeOffset.FromUnixTimeSeconds((until.ToUnixTimeSeconds() + width - 1) / width * width);
        if (range != "custom")
        {
            start = until - ((now - since) / bucket * bucket); // hour: 60 bars, day: 48, week: 56
        }

        var counts = await store.CountAsync(start, until, bucket, ct);
        var byBucket = counts.ToLookup(c => c.Bucket);
        var buckets = new List<object>();
        for (var at = start; at < until; at += bucket)
        {
            var here = byBucket[at].ToList();
            buckets.Add(new
            {
                at,
                allow = here.Where(c => c.Outcome == DecisionOutcome.Allow).Sum(c => c.Count),
                deny = here.Where(c => c.Outcome == DecisionOutcome.Deny).Sum(c => c.Count),
                denyByReason = here.Where(c => c.Outcome == DecisionOutcome.Deny).GroupBy(c => c.Reason).ToDictionary(g => g.Key, g => g.Sum(c => c.Count)), // a reason may be several kinds
            });
        }

        var topDenied = counts.Where(c => c.Outcome == DecisionOutcome.Deny).GroupBy(c => c.Reason).Select(g => new { reason = g.Key, count = g.Sum(c => c.Count) })
            .OrderByDescending(t => t.count).Take(8);
        return Results.Json(new { range, stored = true, since = start, until, bucketSeconds = (long)bucket.TotalSeconds, buckets, topDenyReasons = topDenied });
    }

    /// <summary>
    /// A query's result (the same filters as <c>/decisions</c>, up to 100,000 rows) as CSV (<c>format=csv</c>) or OCSF
    /// JSON lines (<c>format=ocsf</c>), written as it is read; the export itself is audited.
    /// </summary>
    private static async Task<IResult> ExportAsync(HttpContext context, ConsoleDecisions decisions, IDeviceRegistry registry, KtZeroTrust.SocConsole.Auditing.Audit audit, TimeProvider time, CancellationToken ct)
    {
        var format = context.Request.Query["format"].ToString();
        if (format is not ("csv" or "ocsf"))
        {
            return Problem(StatusCodes.Status400BadRequest, "format is csv or ocsf.");
        }

        var filter = await DecisionQuery.FromAsync(context, registry);
        filter = filter with { Limit = Math.Clamp(int.TryParse(context.Request.Query["limit"], out var l) ? l : 10_000, 1, 100_000) };
        var rows = await decisions.QueryAsync(filter, ct);
        audit.Post(context, ConsoleResults.User(context), DecisionOutcome.Allow, ReasonCode.Allowed, "admin:export", $"exported {rows.Count} decisions as {format} ({context.Request.QueryString})");
        var stamp = time.GetUtcNow().ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        context.Response.Headers.ContentDisposition = $"attachment; filename=\"decisions-{stamp}.{(format == "csv" ? "csv" : "ocsf.jsonl")}\"";
        return format == "csv"
            ? Results.Text(DecisionCsv.Write(rows.Select(r => r.Event)), "text/csv; charset=utf-8")
            : Results.Text(string.Concat(rows.Select(r => Encoding.UTF8.GetString(Monitoring.Ocsf.OcsfJson.ToUtf8(r.Event)) + "\n")), "application/x-ndjson; charset=utf-8");
    }

    private static async Task StreamAsync(HttpContext context, ConsoleFeed feed)
    {
        var query = DecisionQuery.From(context.Request.Query);
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-store";
        using var subscription = feed.Subscribe();
        await context.Response.WriteAsync(": connected\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
        try
        {
            while (await subscription.Reader.WaitToReadAsync(context.RequestAborted))
            {
                var text = new StringBuilder();
                while (subscription.Reader.TryRead(out var e))
                {
                    if (query.Matches(e.Event))
                    {
                        text.Append("id: ").Append(e.Event.Id).Append("\ndata: ").Append(Encoding.UTF8.GetString(e.Json.Span)).Append("\n\n");
                    }
                }

                if (text.Length > 0)
                {
                    await context.Response.WriteAsync(text.ToString(), context.RequestAborted);
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                }
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
        }
    }
}

/// <summary>
/// A decision query from the console's query string (the same names a shared link carries): outcome, reason, device
/// (one serial, or several comma-separated), site (its units, from the registry), user, route, source, kind, since, until, limit.
/// </summary>
internal static class DecisionQuery
{
    public static DecisionFilter From(IQueryCollection q, bool alertsOnly = false) => new()
    {
        Outcome = q["outcome"].ToString() switch { "allow" => DecisionOutcome.Allow, "deny" => DecisionOutcome.Deny, _ => null },
        Reason = Text(q["reason"]),
        Kind = alertsOnly ? DecisionNames.Name(DecisionKind.Alert) : Text(q["kind"]),
        Devices = Text(q["device"]) is { } devices ? devices.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : null,
        User = Text(q["user"]),
        Route = Text(q["route"]),
        Source = Text(q["source"]),
        Since = DateTimeOffset.TryParse(q["since"], System.Globalization.CultureInfo.InvariantCulture, out var since) ? since : null,
        Until = DateTimeOffset.TryParse(q["until"], System.Globalization.CultureInfo.InvariantCulture, out var until) ? until : null,
        Limit = Math.Clamp(int.TryParse(q["limit"], out var l) ? l : 200, 1, 5000),
    };

    /// <summary>The filter, with a site's units as its devices (a site with no units matches nothing).</summary>
    public static async Task<DecisionFilter> FromAsync(HttpContext context, IDeviceRegistry registry, bool alertsOnly = false)
    {
        var filter = From(context.Request.Query, alertsOnly);
        if (Text(context.Request.Query["site"]) is not { } site)
        {
            return filter;
        }

        var units = (await registry.ListAsync(null, context.RequestAborted)).Where(d => d.Site == site).Select(d => d.Serial);
        return filter with { Devices = [.. filter.Devices is { } devices ? units.Intersect(devices, StringComparer.Ordinal) : units] };
    }

    private static string? Text(Microsoft.Extensions.Primitives.StringValues value) => value.ToString() is { Length: > 0 } text ? text : null;
}
