using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Monitoring.Store;
using KtZeroTrust.SocConsole.Auditing;
using KtZeroTrust.SocConsole.Authentication;
using KtZeroTrust.SocConsole.Decisions;
using static KtZeroTrust.SocConsole.Endpoints.ConsoleResults;

namespace KtZeroTrust.SocConsole.Endpoints;

/// <summary>The fleet inventory, one device's page, its certificates, and the administrators' lifecycle actions.</summary>
internal static class DeviceEndpoints
{
    /// <summary>How many of a device's decisions its page shows (newest first).</summary>
    private const int DeviceDecisions = 500;

    public static void Map(RouteGroupBuilder api)
    {
        api.MapGet("/devices", ListAsync).RequireAuthorization(ConsolePolicies.Analyst);
        api.MapGet("/devices/{serial}", DeviceAsync).RequireAuthorization(ConsolePolicies.Analyst);
        api.MapPost("/devices/{serial}/actions", ActionAsync).RequireAuthorization(ConsolePolicies.Admin).RequireAntiforgeryForBrowsers();
        api.MapGet("/certificates", async (string serial, IDeviceRegistry registry, CancellationToken ct) => Results.Json(await registry.GetCertificatesAsync(serial, ct)))
            .RequireAuthorization(ConsolePolicies.Analyst);
    }

    private static async Task<IResult> ListAsync(HttpContext context, IDeviceRegistry registry, IFleetInventory fleet, ConsoleFeed feed, ConsoleDecisions decisions, TimeProvider time, CancellationToken ct)
    {
        var q = context.Request.Query;
        DeviceLifecycleState? state = Enum.TryParse<DeviceLifecycleState>(q["state"], ignoreCase: true, out var s) ? s : null;
        var page = Math.Max(1, int.TryParse(q["page"], out var p) ? p : 1);
        var pageSize = Math.Clamp(int.TryParse(q["pageSize"], out var ps) ? ps : 50, 1, 500);
        var site = q["site"].ToString();
        var text = q["q"].ToString();
        var all = (await registry.ListAsync(state, ct))
            .Where(d => site.Length == 0 || d.Site == site)
            .Where(d => text.Length == 0 || d.Serial.Contains(text, StringComparison.OrdinalIgnoreCase) || d.Model.Contains(text, StringComparison.OrdinalIgnoreCase))
            .OrderBy(d => d.Serial, StringComparer.Ordinal).ToList();
        var expiries = await fleet.GetCertificateExpiriesAsync(ct); // one query for the page, not one per row
        var shown = all.Skip((page - 1) * pageSize).Take(pageSize).ToList();
        // Last seen: the store's last decision of the day for the page's units (it outlives a restart), else the live feed's.
        var activity = decisions.Store is { } store ? await store.ActivityAsync([.. shown.Select(d => d.Serial)], time.GetUtcNow().AddDays(-1), ct) : null;
        var items = shown.Select(d =>
        {
            var seen = activity?.GetValueOrDefault(d.Serial) is { } a ? (At: a.Last, Address: a.LastAddress) : feed.LastSeen(d.Serial);
            return new
            {
                serial = d.Serial, state = d.State.ToString(), model = d.Model, site = d.Site, firmware = d.LastFirmwareVersion,
                lastSeen = seen?.At, sourceAddress = seen?.Address, certificateExpiry = expiries.TryGetValue(d.Serial, out var expiry) ? expiry : (DateTimeOffset?)null,
                lastAttestedAt = d.LastAttestedAt,
            };
        }).ToList();
        return Results.Json(new { total = all.Count, page, pageSize, items });
    }

    private static async Task<IResult> DeviceAsync(string serial, IDeviceRegistry registry, ConsoleFeed feed, ConsoleDecisions source, CancellationToken ct)
    {
        if (await registry.FindAsync(serial, ct) is not { } device)
        {
            return Problem(StatusCodes.Status404NotFound, $"No device '{serial}'.");
        }

        var decisions = await source.QueryAsync(new DecisionFilter { Devices = [serial], Limit = DeviceDecisions }, ct);
        var seen = feed.LastSeen(serial);
        return Results.Json(new
        {
            device = new { serial = device.Serial, state = device.State.ToString(), model = device.Model, site = device.Site, firmware = device.LastFirmwareVersion, lastAttestedAt = device.LastAttestedAt, createdAt = device.CreatedAt, lastSeen = seen?.At, sourceAddress = seen?.Address },
            certificates = await registry.GetCertificatesAsync(serial, ct),
            history = (await registry.GetHistoryAsync(serial, ct)).Select(h => new { from = h.From?.ToString(), to = h.To.ToString(), h.Actor, h.Reason, h.At }),
            attestations = (await registry.GetAttestationsAsync(serial, 50, ct)).Select(a => new { a.Id, a.Passed, a.Reasons, a.FirmwareVersion, a.Latitude, a.Longitude, a.SourceAddress, a.At }),
            decisions = decisions.Select(RawDecisionJson.Of),
        });
    }

    private sealed record ActionRequest(string? Action, string? Reason);

    private static async Task<IResult> ActionAsync(string serial, HttpContext context, IDeviceRegistry registry, Audit audit)
    {
        var (read, request) = await ReadBodyAsync<ActionRequest>(context);
        return read
            ? (await TransitionAsync(context, registry, audit, serial, request?.Action, request?.Reason)).Result
            : Problem(StatusCodes.Status400BadRequest, "The body is not a JSON {action, reason} object.");
    }

    /// <summary>
    /// An administrator's lifecycle action on a device (from its page or from an alert's case), audited either way;
    /// <c>Done</c> when the device moved.
    /// </summary>
    internal static async Task<(bool Done, IResult Result)> TransitionAsync(HttpContext context, IDeviceRegistry registry, Audit audit, string serial, string? action, string? reason)
    {
        DeviceLifecycleState? target = action?.ToLowerInvariant() switch
        {
            "suspend" => DeviceLifecycleState.Suspended,
            "resume" => DeviceLifecycleState.Active,
            "revoke" => DeviceLifecycleState.Revoked,
            "decommission" => DeviceLifecycleState.Decommissioned,
            _ => null,
        };
        if (target is null)
        {
            return (false, Problem(StatusCodes.Status400BadRequest, "action is suspend, resume, revoke or decommission."));
        }

        if (string.IsNullOrWhiteSpace(reason))
        {
            return (false, Problem(StatusCodes.Status400BadRequest, "A reason is required: it goes into the device's history and the audit trail."));
        }

        var user = User(context);
        var route = $"admin:{action!.ToLowerInvariant()}";
        try
        {
            var record = await registry.TransitionAsync(serial, target.Value, $"console:{user}", reason, context.RequestAborted);
            audit.Post(context, serial, DecisionOutcome.Allow, ReasonCode.LifecycleTransition, route, $"{user}: {reason}");
            return (true, Results.Json(new { serial = record.Serial, state = record.State.ToString() }));
        }
        catch (RegistryException ex)
        {
            var refused = ex.Code == RegistryException.DeviceNotFound ? ReasonCode.DeviceUnknown : ReasonCode.LifecycleTransitionInvalid;
            audit.Post(context, serial, DecisionOutcome.Deny, refused, route, $"{user}: refused: {ex.Message}");
            return (false, Problem(ex.Code == RegistryException.DeviceNotFound ? StatusCodes.Status404NotFound : StatusCodes.Status409Conflict, $"{ex.Code}: {ex.Message}"));
        }
    }
}
