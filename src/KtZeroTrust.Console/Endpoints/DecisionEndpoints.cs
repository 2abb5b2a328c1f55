using System.Text;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.SocConsole.Authentication;
using KtZeroTrust.SocConsole.Decisions;

namespace KtZeroTrust.SocConsole.Endpoints;

/// <summary>Decision queries, the live feed (server-sent events) and the last hour's summary.</summary>
internal static class DecisionEndpoints
{
    public static void Map(RouteGroupBuilder api)
    {
        api.MapGet("/decisions", async (HttpContext context, ConsoleDecisions decisions, CancellationToken ct) =>
        {
            var query = DecisionQuery.From(context.Request.Query);
            return Results.Json((await query.RunAsync(decisions, alertsOnly: false, ct)).Select(RawDecisionJson.Of));
        }).RequireAuthorization(ConsolePolicies.Analyst);
        api.MapGet("/decisions/stream", StreamAsync).RequireAuthorization(ConsolePolicies.Analyst);
        api.MapGet("/summary", (ConsoleFeed feed) =>
        {
            var (perMinute, top) = feed.Summary();
            return Results.Json(new { perMinute = perMinute.Select(m => new { minute = m.Minute, allow = m.Allow, deny = m.Deny }), topDenyReasons = top.Select(t => new { reason = t.Reason, count = t.Count }) });
        }).RequireAuthorization(ConsolePolicies.Analyst);
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

/// <summary>A decision query from the console's query string: filters, a time range and a limit (newest first).</summary>
internal sealed record DecisionQuery(string Outcome, string Reason, string Device, string User, string Route, string Kind, DateTimeOffset Since, DateTimeOffset Until, int Limit)
{
    public static DecisionQuery From(IQueryCollection q) => new(
        q["outcome"].ToString(), q["reason"].ToString(), q["device"].ToString(), q["user"].ToString(), q["route"].ToString(), q["kind"].ToString(),
        DateTimeOffset.TryParse(q["since"], System.Globalization.CultureInfo.InvariantCulture, out var since) ? since : DateTimeOffset.MinValue,
        DateTimeOffset.TryParse(q["until"], System.Globalization.CultureInfo.InvariantCulture, out var until) ? until : DateTimeOffset.MaxValue,
        Math.Clamp(int.TryParse(q["limit"], out var l) ? l : 200, 1, 5000));

    public bool Matches(DecisionEvent e) => (Outcome.Length == 0 || (Outcome == "allow") == (e.Outcome == DecisionOutcome.Allow))
        && (Reason.Length == 0 || ReasonCodes.Name(e.Reason) == Reason)
        && (Device.Length == 0 || (e.Subject == Device && e.Listener != DecisionListener.User))
        && (User.Length == 0 || (e.Subject == User && e.Listener == DecisionListener.User))
        && (Route.Length == 0 || e.Route == Route)
        && (Kind.Length == 0 || DecisionNames.Name(e.Kind) == Kind);

    /// <summary>The newest matching decisions (alerts only, for the alert list), newest first.</summary>
    public Task<List<Monitoring.DecisionLog.JournaledDecision>> RunAsync(ConsoleDecisions decisions, bool alertsOnly, CancellationToken cancellationToken)
        => decisions.LatestAsync(e => (!alertsOnly || e.Kind == DecisionKind.Alert) && Matches(e), Limit, cancellationToken, Since, Until);
}
