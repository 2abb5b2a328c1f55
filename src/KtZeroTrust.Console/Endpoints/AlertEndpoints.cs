using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Store;
using KtZeroTrust.SocConsole.Auditing;
using KtZeroTrust.SocConsole.Authentication;
using KtZeroTrust.SocConsole.Decisions;
using static KtZeroTrust.SocConsole.Endpoints.ConsoleResults;

namespace KtZeroTrust.SocConsole.Endpoints;

/// <summary>
/// Alerts (decisions of kind alert) with their severity, acknowledgement and assignee, the count the navigation shows,
/// and an alert's case: the device and its site, the evidence, the decisions around it, certificates and attestations,
/// the case's steps, and the actions taken from it (acknowledge, assign, note, suspend, revoke), each one audited.
/// </summary>
internal static class AlertEndpoints
{
    /// <summary>How far around an alert its case shows the device's decisions, and how far back the evidence is read.</summary>
    private static readonly TimeSpan Around = TimeSpan.FromHours(1);

    private static readonly TimeSpan EvidenceWindow = TimeSpan.FromMinutes(10);

    public static void Map(RouteGroupBuilder api)
    {
        api.MapGet("/alerts", ListAsync).RequireAuthorization(ConsolePolicies.Analyst);
        api.MapGet("/alerts/open", OpenAsync).RequireAuthorization(ConsolePolicies.Analyst);
        api.MapGet("/alerts/{id}/case", CaseAsync).RequireAuthorization(ConsolePolicies.Analyst);
        api.MapPost("/alerts/{id}/ack", AcknowledgeAsync).RequireAuthorization(ConsolePolicies.Analyst).RequireAntiforgeryForBrowsers();
        api.MapPost("/alerts/{id}/assign", AssignAsync).RequireAuthorization(ConsolePolicies.Analyst).RequireAntiforgeryForBrowsers();
        api.MapPost("/alerts/{id}/notes", NoteAsync).RequireAuthorization(ConsolePolicies.Analyst).RequireAntiforgeryForBrowsers();
        api.MapPost("/alerts/{id}/actions", ActAsync).RequireAuthorization(ConsolePolicies.Admin).RequireAntiforgeryForBrowsers();
    }

    private static async Task<IResult> ListAsync(HttpContext context, ConsoleDecisions decisions, IDeviceRegistry registry, IAlertAcknowledgementStore cases, CancellationToken ct)
    {
        var alerts = await decisions.QueryAsync(await DecisionQuery.FromAsync(context, registry, alertsOnly: true), ct);
        var views = await ViewsAsync(alerts, cases, ct);
        var open = context.Request.Query["status"] == "open";
        return Results.Json(views.Where(v => !open || v.Acknowledged is null).Select(v => v.Json));
    }

    /// <summary>Unacknowledged alerts of the last 7 days by severity (the navigation's count; polled, and on each live alert).</summary>
    private static async Task<IResult> OpenAsync(ConsoleDecisions decisions, IAlertAcknowledgementStore cases, TimeProvider time, CancellationToken ct)
    {
        var open = await OpenAlertsAsync(decisions, cases, time, ct);
        return Results.Json(new
        {
            open = open.Count,
            bySeverity = Enum.GetValues<AlertSeverity>().Reverse().ToDictionary(AlertSeverities.Name, s => open.Count(v => v.Severity == s)),
        });
    }

    private static async Task<IResult> CaseAsync(string id, ConsoleDecisions decisions, IDeviceRegistry registry, IAlertAcknowledgementStore cases, CancellationToken ct)
    {
        if (await FindAlertAsync(decisions, id, ct) is not { } alert)
        {
            return Problem(StatusCodes.Status404NotFound, $"No alert '{id}'.");
        }

        var e = alert.Event;
        var view = (await ViewsAsync([alert], cases, ct))[0];
        var device = e.Subject is { } subject ? await registry.FindAsync(subject, ct) : null;
        var site = device?.Site is { } siteId ? await registry.FindSiteAsync(siteId, ct) : null;
        var timeline = device is null ? []
            : await decisions.QueryAsync(new DecisionFilter { Devices = [device.Serial], Since = e.Time - Around, Until = e.Time + Around, Limit = 500 }, ct);
        var attestations = device is null ? [] : await registry.GetAttestationsAsync(device.Serial, 10, ct);
        return Results.Json(new
        {
            alert = view.Json,
            severity = AlertSeverities.Name(view.Severity),
            device = device is null ? null : new { serial = device.Serial, state = device.State.ToString(), model = device.Model, site = device.Site, firmware = device.LastFirmwareVersion, lastAttestedAt = device.LastAttestedAt },
            site = site is null ? null : new { id = site.Id, latitude = site.Latitude, longitude = site.Longitude, radiusMeters = site.RadiusMeters, allowedPrefixes = site.AllowedPrefixes },
            evidence = await EvidenceAsync(e, site, attestations, decisions, ct),
            timeline = timeline.Select(RawDecisionJson.Of),
            certificates = device is null ? [] : await registry.GetCertificatesAsync(device.Serial, ct),
            attestations = attestations.Select(a => new { a.Id, a.Passed, a.Reasons, a.FirmwareVersion, a.Latitude, a.Longitude, a.SourceAddress, a.At }),
            steps = (await cases.GetCaseAsync(id, ct)).Select(s => new { action = s.Action, by = s.By, at = s.At, text = s.Text }),
            assignee = view.Assignee,
        });
    }

    /// <summary>
    /// What the alert rests on, read from the stored decisions and the registry rather than from its sentence: a
    /// clone's source addresses (allowed, in the 10 minutes before), a burst's refusals by reason, a move's two
    /// positions and their distance, an outside source against the site's prefixes.
    /// </summary>
    private static async Task<object> EvidenceAsync(DecisionEvent alert, Site? site, IReadOnlyList<AttestationRecord> attestations, ConsoleDecisions decisions, CancellationToken ct)
    {
        var since = alert.Time - EvidenceWindow;
        switch (alert.Reason)
        {
            case ReasonCode.CloneSuspected when alert.Subject is { } subject:
            {
                // Every request of the identity, allowed or refused (the gateway's own clone rule may have refused the second source).
                var requests = await decisions.QueryAsync(new DecisionFilter { Devices = [subject], Kind = DecisionNames.Name(DecisionKind.Access), Since = since, Until = alert.Time + TimeSpan.FromSeconds(5), Limit = 5000 }, ct);
                return new
                {
                    kind = "clone",
                    sources = requests.Select(d => d.Event).Where(d => d.SourceAddress is not null).GroupBy(d => d.SourceAddress!).Select(g => new
                    {
                        address = g.Key, allowed = g.Count(d => d.Outcome == DecisionOutcome.Allow), denied = g.Count(d => d.Outcome == DecisionOutcome.Deny),
                        first = g.Min(d => d.Time), last = g.Max(d => d.Time),
                        nodes = g.Select(d => d.Node).Where(n => n is not null).Distinct().Order(StringComparer.Ordinal),
                    }).OrderBy(s => s.first),
                };
            }

            case ReasonCode.DenialBurst when alert.SourceAddress is { } source:
            {
                var denied = await decisions.QueryAsync(new DecisionFilter { Source = source, Outcome = DecisionOutcome.Deny, Since = since, Until = alert.Time, Limit = 5000 }, ct);
                return new
                {
                    kind = "burst", source, denied = denied.Count,
                    reasons = denied.GroupBy(d => ReasonCodes.Name(d.Event.Reason)).Select(g => new { reason = g.Key, count = g.Count() }).OrderByDescending(r => r.count),
                    subjects = denied.Select(d => d.Event.Subject).Where(s => s is not null).Distinct().Take(20),
                };
            }

            case ReasonCode.LocationDrift:
            {
                var positions = attestations.Where(a => a.Latitude is not null && a.Longitude is not null).Take(2).ToList();
                return new
                {
                    kind = "move",
                    positions = positions.Select(p => new { latitude = p.Latitude, longitude = p.Longitude, at = p.At, attestation = p.Id }),
                    distanceMeters = positions.Count == 2 ? GeoDistance.Meters(positions[1].Latitude!.Value, positions[1].Longitude!.Value, positions[0].Latitude!.Value, positions[0].Longitude!.Value) : (double?)null,
                    fromSiteMeters = positions.Count > 0 && site is not null ? GeoDistance.Meters(site.Latitude, site.Longitude, positions[0].Latitude!.Value, positions[0].Longitude!.Value) : (double?)null,
                };
            }

            case ReasonCode.SourceOutsidePrefixes:
                return new { kind = "source", source = alert.SourceAddress, allowedPrefixes = site?.AllowedPrefixes ?? [] };

            default:
                return new { kind = "other", detail = alert.Detail };
        }
    }

    private static async Task<IResult> AcknowledgeAsync(string id, HttpContext context, IAlertAcknowledgementStore cases, Audit audit, TimeProvider time)
    {
        var user = User(context);
        var note = context.Request.Query["note"].ToString() is { Length: > 0 } n ? n : null;
        await cases.AcknowledgeAsync(new AlertAcknowledgement(id, user, time.GetUtcNow(), note), context.RequestAborted);
        await cases.AddCaseEntryAsync(new AlertCaseEntry(id, "ack", user, time.GetUtcNow(), note), context.RequestAborted);
        audit.Post(context, user, DecisionOutcome.Allow, ReasonCode.Allowed, "admin:ack", $"alert {id} acknowledged");
        return Results.NoContent();
    }

    private sealed record AssignRequest(string? Analyst);

    private static async Task<IResult> AssignAsync(string id, HttpContext context, ConsoleDecisions decisions, IAlertAcknowledgementStore cases, Audit audit, TimeProvider time)
    {
        // Any analyst's name: accounts signed in through the identity provider have no local record to check against.
        var (read, request) = await ReadBodyAsync<AssignRequest>(context);
        if (!read || request?.Analyst is not { Length: > 0 and <= 128 } || request.Analyst.Any(char.IsControl))
        {
            return Problem(StatusCodes.Status400BadRequest, "The body is a JSON {analyst} object naming an analyst (1-128 characters).");
        }

        return await StepAsync(id, context, decisions, cases, audit, time, "assign", request.Analyst, $"alert {id} assigned to {request.Analyst}");
    }

    private sealed record NoteRequest(string? Text);

    private static async Task<IResult> NoteAsync(string id, HttpContext context, ConsoleDecisions decisions, IAlertAcknowledgementStore cases, Audit audit, TimeProvider time)
    {
        var (read, request) = await ReadBodyAsync<NoteRequest>(context);
        if (!read || string.IsNullOrWhiteSpace(request?.Text) || request.Text.Length > 4000)
        {
            return Problem(StatusCodes.Status400BadRequest, "The body is a JSON {text} object, 1 to 4,000 characters.");
        }

        return await StepAsync(id, context, decisions, cases, audit, time, "note", request.Text, $"note on alert {id}");
    }

    /// <summary>A step of an existing alert's case, and its audit decision (route <c>admin:{action}</c>).</summary>
    private static async Task<IResult> StepAsync(string id, HttpContext context, ConsoleDecisions decisions, IAlertAcknowledgementStore cases, Audit audit, TimeProvider time,
        string action, string text, string detail)
    {
        if (await FindAlertAsync(decisions, id, context.RequestAborted) is null)
        {
            return Problem(StatusCodes.Status404NotFound, $"No alert '{id}'.");
        }

        var user = User(context);
        await cases.AddCaseEntryAsync(new AlertCaseEntry(id, action, user, time.GetUtcNow(), text), context.RequestAborted);
        audit.Post(context, user, DecisionOutcome.Allow, ReasonCode.Allowed, $"admin:{action}", detail);
        return Results.NoContent();
    }

    private sealed record ActionRequest(string? Action, string? Reason);

    /// <summary>Suspend or revoke the alert's device from its case (an administrator); the step joins the case.</summary>
    private static async Task<IResult> ActAsync(string id, HttpContext context, ConsoleDecisions decisions, IDeviceRegistry registry, IAlertAcknowledgementStore cases, Audit audit, TimeProvider time)
    {
        var (read, request) = await ReadBodyAsync<ActionRequest>(context);
        if (!read || request?.Action is not ("suspend" or "revoke"))
        {
            return Problem(StatusCodes.Status400BadRequest, "The body is a JSON {action: suspend|revoke, reason} object.");
        }

        if (await FindAlertAsync(decisions, id, context.RequestAborted) is not { Event.Subject: { } serial })
        {
            return Problem(StatusCodes.Status404NotFound, $"No alert '{id}' about a device.");
        }

        var (done, result) = await DeviceEndpoints.TransitionAsync(context, registry, audit, serial, request.Action, request.Reason);
        if (done)
        {
            await cases.AddCaseEntryAsync(new AlertCaseEntry(id, request.Action, User(context), time.GetUtcNow(), request.Reason), context.RequestAborted);
        }

        return result;
    }

    private static async Task<JournaledDecision?> FindAlertAsync(ConsoleDecisions decisions, string id, CancellationToken ct)
        => await decisions.QueryAsync(new DecisionFilter { Kind = DecisionNames.Name(DecisionKind.Alert), Id = id, Limit = 1 }, ct) is [var alert, ..] ? alert : null;

    internal sealed record AlertView(JournaledDecision Alert, RawDecisionJson Json, AlertSeverity Severity, DateTimeOffset? Acknowledged, string? Assignee);

    /// <summary>The unacknowledged alerts of the last 7 days (the navigation's count, the map's colours).</summary>
    internal static async Task<List<AlertView>> OpenAlertsAsync(ConsoleDecisions decisions, IAlertAcknowledgementStore cases, TimeProvider time, CancellationToken ct)
    {
        var alerts = await decisions.QueryAsync(new DecisionFilter { Kind = DecisionNames.Name(DecisionKind.Alert), Since = time.GetUtcNow().AddDays(-7), Limit = 5000 }, ct);
        return [.. (await ViewsAsync(alerts, cases, ct)).Where(v => v.Acknowledged is null)];
    }

    /// <summary>The alerts with what the console adds to them: severity, acknowledgement, assignee (two queries for the lot).</summary>
    private static async Task<List<AlertView>> ViewsAsync(IReadOnlyList<JournaledDecision> alerts, IAlertAcknowledgementStore cases, CancellationToken ct)
    {
        string[] ids = [.. alerts.Select(a => a.Event.Id)];
        var acks = await cases.FindAcknowledgementsAsync(ids, ct);
        var assignees = await cases.FindAssigneesAsync(ids, ct);
        return [.. alerts.Select(a =>
        {
            var ack = acks.GetValueOrDefault(a.Event.Id);
            var severity = AlertSeverities.Of(a.Event.Reason);
            var assignee = assignees.GetValueOrDefault(a.Event.Id);
            return new AlertView(a, RawDecisionJson.With(a, ("acknowledgedBy", ack?.By), ("acknowledgedAt", ack?.At), ("severity", AlertSeverities.Name(severity)), ("assignee", assignee)),
                severity, ack?.At, assignee);
        })];
    }
}
