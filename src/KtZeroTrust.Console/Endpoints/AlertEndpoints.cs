using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.SocConsole.Auditing;
using KtZeroTrust.SocConsole.Authentication;
using KtZeroTrust.SocConsole.Decisions;

namespace KtZeroTrust.SocConsole.Endpoints;

/// <summary>Alerts (decisions of kind alert) with their acknowledgements, kept in the registry database.</summary>
internal static class AlertEndpoints
{
    public static void Map(RouteGroupBuilder api)
    {
        api.MapGet("/alerts", ListAsync).RequireAuthorization(ConsolePolicies.Analyst);
        api.MapPost("/alerts/{id}/ack", AcknowledgeAsync).RequireAuthorization(ConsolePolicies.Analyst).RequireAntiforgeryForBrowsers();
    }

    private static async Task<IResult> ListAsync(HttpContext context, ConsoleDecisions decisions, IDeviceRegistry registry, IAlertAcknowledgementStore acknowledgements, CancellationToken ct)
    {
        var alerts = await decisions.QueryAsync(await DecisionQuery.FromAsync(context, registry, alertsOnly: true), ct);
        var acks = await acknowledgements.FindAcknowledgementsAsync([.. alerts.Select(a => a.Event.Id)], ct);
        return Results.Json(alerts.Select(a => acks.TryGetValue(a.Event.Id, out var ack)
            ? RawDecisionJson.WithAcknowledgement(a, ack.By, ack.At)
            : RawDecisionJson.WithAcknowledgement(a, null, null)));
    }

    private static async Task<IResult> AcknowledgeAsync(string id, HttpContext context, IAlertAcknowledgementStore acknowledgements, Audit audit, TimeProvider time)
    {
        var user = ConsoleResults.User(context);
        await acknowledgements.AcknowledgeAsync(new AlertAcknowledgement(id, user, time.GetUtcNow(), context.Request.Query["note"]), context.RequestAborted);
        audit.Post(context, user, DecisionOutcome.Allow, ReasonCode.Allowed, "admin:ack", $"alert {id} acknowledged");
        return Results.NoContent();
    }
}
