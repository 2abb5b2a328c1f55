using System.Text;
using System.Text.Json;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.Listeners;
using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Monitoring.DecisionLog;

namespace KtZeroTrust.Server.SocConsole;

/// <summary>Acknowledged alerts, in a JSON file next to the decision log.</summary>
public sealed class AlertAcknowledgements(string path)
{
    private readonly object _gate = new();
    private Dictionary<string, Acknowledgement>? _acks;

    public sealed record Acknowledgement(string By, DateTimeOffset At, string? Note);

    public Acknowledgement? Find(string id)
    {
        lock (_gate)
        {
            return Load().GetValueOrDefault(id);
        }
    }

    public void Add(string id, Acknowledgement ack)
    {
        lock (_gate)
        {
            var acks = Load();
            acks[id] = ack;
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(acks));
            File.Move(path + ".tmp", path, overwrite: true);
        }
    }

    private Dictionary<string, Acknowledgement> Load()
        => _acks ??= File.Exists(path) ? JsonSerializer.Deserialize<Dictionary<string, Acknowledgement>>(File.ReadAllText(path)) ?? [] : [];
}

/// <summary>
/// The admin API and the web console on the console listener. Every call needs a session (a bearer token, or the
/// HttpOnly SameSite=Strict cookie the browser gets at login, with the <c>X-ZT-Console</c> header on writes so another
/// site cannot forge them); analysts read and acknowledge, administrators also act on devices and add users. Every
/// write, and every sign-in attempt, is an <c>admin</c> decision event.
/// </summary>
public static partial class ConsoleEndpoints
{
    public const string CookieName = "zt_console";
    private const string CsrfHeader = "X-ZT-Console";

    public static IEndpointRouteBuilder MapSocConsole(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api").RequireListener(ListenerKind.Console);
        api.MapPost("/login", LoginAsync);
        api.MapPost("/logout", (HttpContext context, ConsoleSessions sessions) =>
        {
            sessions.End(Token(context));
            context.Response.Cookies.Delete(CookieName);
            return Results.NoContent();
        });
        api.MapGet("/oidc", (ConsoleOidcOptions oidc) => Results.Json(new { enabled = oidc.Enabled }));
        api.MapGet("/oidc/login", (ConsoleOidcOptions oidc) => oidc.Enabled ? ConsoleOidc.Begin() : Problem(StatusCodes.Status404NotFound, "No identity provider is configured for the console."));
        api.MapMethods(ConsoleOidc.CallbackPath["/api".Length..], ["GET", "POST"], (HttpContext context, ConsoleOidcOptions oidc) =>
            oidc.Enabled ? ConsoleOidc.CompleteAsync(context) : Task.FromResult(Problem(StatusCodes.Status404NotFound, "No identity provider is configured for the console.")));
        api.MapGet("/oidc/logout", (HttpContext context, ConsoleSessions sessions, ConsoleOidcOptions oidc) =>
        {
            sessions.End(Token(context));
            context.Response.Cookies.Delete(CookieName);
            return oidc.Enabled ? ConsoleOidc.SignOut() : Results.Redirect("/");
        });
        api.MapPost("/password", ChangePasswordAsync).AddEndpointFilter(Require(ConsoleRoles.Analyst));
        api.MapGet("/me", (HttpContext context) => Results.Json(new { user = Session(context)!.User, role = Session(context)!.Role })).AddEndpointFilter(Require(ConsoleRoles.Analyst));

        api.MapGet("/devices", ListDevicesAsync).AddEndpointFilter(Require(ConsoleRoles.Analyst));
        api.MapGet("/devices/{serial}", (string serial, IDeviceRegistry registry, ConsoleFeed feed, ConsoleDecisions decisions, CancellationToken ct) => DeviceAsync(serial, registry, feed, decisions, ct)).AddEndpointFilter(Require(ConsoleRoles.Analyst));
        api.MapPost("/devices/{serial}/actions", DeviceActionAsync).AddEndpointFilter(Require(ConsoleRoles.Admin));
        api.MapGet("/certificates", async (string serial, IDeviceRegistry registry, CancellationToken ct) => Results.Json(await registry.GetCertificatesAsync(serial, ct))).AddEndpointFilter(Require(ConsoleRoles.Analyst));

        api.MapGet("/decisions", (HttpContext context, ConsoleDecisions decisions, CancellationToken ct) => QueryDecisionsAsync(context, decisions, alertsOnly: false, null, ct)).AddEndpointFilter(Require(ConsoleRoles.Analyst));
        api.MapGet("/decisions/stream", StreamAsync).AddEndpointFilter(Require(ConsoleRoles.Analyst));
        api.MapGet("/summary", (ConsoleFeed feed) =>
        {
            var (perMinute, top) = feed.Summary();
            return Results.Json(new { perMinute = perMinute.Select(m => new { minute = m.Minute, allow = m.Allow, deny = m.Deny }), topDenyReasons = top.Select(t => new { reason = t.Reason, count = t.Count }) });
        }).AddEndpointFilter(Require(ConsoleRoles.Analyst));
        api.MapGet("/alerts", (HttpContext context, ConsoleDecisions decisions, AlertAcknowledgements acks, CancellationToken ct) => QueryDecisionsAsync(context, decisions, alertsOnly: true, acks, ct)).AddEndpointFilter(Require(ConsoleRoles.Analyst));
        api.MapPost("/alerts/{id}/ack", AcknowledgeAsync).AddEndpointFilter(Require(ConsoleRoles.Analyst));
        api.MapPost("/users", AddUserAsync).AddEndpointFilter(Require(ConsoleRoles.Admin));
        api.MapGet("/openapi.json", () => Results.Text(OpenApi.Document, "application/json"));

        // The web console: three static files, no external assets (works offline).
        foreach (var (path, file, type) in new[] { ("/", "index.html", "text/html; charset=utf-8"), ("/console.js", "console.js", "text/javascript; charset=utf-8"), ("/console.css", "console.css", "text/css; charset=utf-8") })
        {
            endpoints.MapGet(path, (HttpContext context) =>
            {
                context.Response.Headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";
                context.Response.Headers.XContentTypeOptions = "nosniff";
                return Results.File(Path.Combine(AppContext.BaseDirectory, "wwwroot", "console", file), type);
            }).RequireListener(ListenerKind.Console);
        }

        return endpoints;
    }

    private sealed record LoginRequest(string? User, string? Password, string? NewPassword);

    private static async Task<IResult> LoginAsync(HttpContext context, ConsoleUsers users, ConsoleSessions sessions, Audit audit, SignInGuard guard)
    {
        var (read, request) = await ReadBodyAsync<LoginRequest>(context);
        if (!read)
        {
            return Problem(StatusCodes.Status400BadRequest, "The body is not a JSON {user, password} object.");
        }

        var (refusal, account) = CheckPassword(context, users, audit, guard, request?.User ?? "", request?.Password, "console:login",
            StatusCodes.Status401Unauthorized, "Wrong user name or password.");
        if (account is null)
        {
            return refusal!;
        }

        guard.Succeeded(account.Name);

        if (account.MustChangePassword)
        {
            if (string.IsNullOrEmpty(request!.NewPassword))
            {
                return Results.Json(new { mustChangePassword = true, detail = "This is a one-time password: sign in again with newPassword (12 characters or more)." }, statusCode: StatusCodes.Status403Forbidden);
            }

            try
            {
                users.ChangePassword(account.Name, request.NewPassword);
            }
            catch (ArgumentException ex)
            {
                return Problem(StatusCodes.Status400BadRequest, ex.Message);
            }
        }

        var token = sessions.Create(account.Name, account.Role);
        context.Response.Cookies.Append(CookieName, token, new CookieOptions { HttpOnly = true, Secure = true, SameSite = SameSiteMode.Strict, Path = "/", MaxAge = sessions.Lifetime });
        audit.Post(context, account.Name, DecisionOutcome.Allow, ReasonCode.Allowed, "console:login", $"signed in as {account.Role}");
        return Results.Json(new { token, user = account.Name, role = account.Role });
    }

    /// <summary>
    /// The one password check (sign-in, password change): refused unread while the account or source waits (429,
    /// Retry-After), a wrong password audited as <c>credentials_invalid</c>; either counts toward the burst alert.
    /// </summary>
    private static (IResult? Refusal, ConsoleUsers.Account? Account) CheckPassword(HttpContext context, ConsoleUsers users, Audit audit, SignInGuard guard,
        string name, string? password, string route, int wrongStatus, string wrongMessage)
    {
        var source = context.Connection.RemoteIpAddress?.ToString();
        if (guard.RetryAfter(name, source) is { } wait)
        {
            // Refused before the password is even looked at: guessing gets no answer while the account or source waits.
            var seconds = Math.Ceiling(wait.TotalSeconds);
            audit.PostRefusal(context, name, ReasonCode.SignInThrottled, $"{route} for '{name}' from {source} refused for {seconds} s more after repeated failures");
            context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            AlertOnBurst(context, audit, name, guard.Failed(name, source, whileThrottled: true));
            return (Problem(StatusCodes.Status429TooManyRequests, $"Too many failed attempts; try again in {seconds} s."), null);
        }

        if (users.Verify(name, password ?? "") is not { } account)
        {
            audit.Post(context, name, DecisionOutcome.Deny, ReasonCode.CredentialsInvalid, route, wrongMessage);
            AlertOnBurst(context, audit, name, guard.Failed(name, source));
            return (Problem(wrongStatus, wrongMessage), null);
        }

        return (null, account);
    }

    private static void AlertOnBurst(HttpContext context, Audit audit, string name, IReadOnlyList<string> bursts)
    {
        foreach (var burst in bursts)
        {
            audit.Post(context, name, DecisionOutcome.Deny, ReasonCode.SignInBurst, "detector:sign-in-burst",
                $"{SignInGuard.BurstThreshold} or more failed sign-ins for {burst} within {SignInGuard.Window.TotalMinutes} minutes", DecisionEvent.AlertKind);
        }
    }

    private sealed record PasswordRequest(string? CurrentPassword, string? NewPassword);

    /// <summary>A signed-in user replaces their own password; the current one is asked again (a left-open session is not enough).</summary>
    private static async Task<IResult> ChangePasswordAsync(HttpContext context, ConsoleUsers users, Audit audit, SignInGuard guard)
    {
        var (read, request) = await ReadBodyAsync<PasswordRequest>(context);
        if (!read || request is null)
        {
            return Problem(StatusCodes.Status400BadRequest, "The body is not a JSON {currentPassword, newPassword} object.");
        }

        var user = Session(context)!.User;
        var (refusal, account) = CheckPassword(context, users, audit, guard, user, request.CurrentPassword, "console:password",
            StatusCodes.Status403Forbidden, "The current password is wrong."); // the same guessing, through another door
        if (account is null)
        {
            return refusal!;
        }

        try
        {
            users.ChangePassword(user, request.NewPassword ?? "");
        }
        catch (ArgumentException ex)
        {
            audit.Post(context, user, DecisionOutcome.Deny, ReasonCode.PasswordPolicyViolation, "console:password", ex.Message);
            return Problem(StatusCodes.Status400BadRequest, ex.Message);
        }

        audit.Post(context, user, DecisionOutcome.Allow, ReasonCode.Allowed, "console:password", $"{user} changed their password");
        return Results.NoContent();
    }

    private static async Task<IResult> ListDevicesAsync(HttpContext context, IDeviceRegistry registry, ConsoleFeed feed, CancellationToken ct)
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
        var items = new List<object>();
        foreach (var d in all.Skip((page - 1) * pageSize).Take(pageSize))
        {
            var current = (await registry.GetCertificatesAsync(d.Serial, ct)).Where(c => c.RevokedAt is null).MaxBy(c => c.NotAfter);
            var seen = feed.LastSeen(d.Serial);
            items.Add(new
            {
                serial = d.Serial, state = d.State.ToString(), model = d.Model, site = d.Site, firmware = d.LastFirmwareVersion,
                lastSeen = seen?.At, sourceAddress = seen?.Address, certificateExpiry = current?.NotAfter, lastAttestedAt = d.LastAttestedAt,
            });
        }

        return Results.Json(new { total = all.Count, page, pageSize, items });
    }

    private static async Task<IResult> DeviceAsync(string serial, IDeviceRegistry registry, ConsoleFeed feed, ConsoleDecisions source, CancellationToken ct)
    {
        if (await registry.FindAsync(serial, ct) is not { } device)
        {
            return Problem(StatusCodes.Status404NotFound, $"No device '{serial}'.");
        }

        var decisions = new List<DecisionEvent>();
        await foreach (var e in source.ReadAsync(DateTimeOffset.MinValue, ct))
        {
            if (e.Subject == serial)
            {
                decisions.Add(e);
                if (decisions.Count > 500)
                {
                    decisions.RemoveAt(0);
                }
            }
        }

        var seen = feed.LastSeen(serial);
        return Results.Json(new
        {
            device = new { serial = device.Serial, state = device.State.ToString(), model = device.Model, site = device.Site, firmware = device.LastFirmwareVersion, lastAttestedAt = device.LastAttestedAt, createdAt = device.CreatedAt, lastSeen = seen?.At, sourceAddress = seen?.Address },
            certificates = await registry.GetCertificatesAsync(serial, ct),
            history = (await registry.GetHistoryAsync(serial, ct)).Select(h => new { from = h.From?.ToString(), to = h.To.ToString(), h.Actor, h.Reason, h.At }),
            attestations = (await registry.GetAttestationsAsync(serial, 50, ct)).Select(a => new { a.Id, a.Passed, a.Reasons, a.FirmwareVersion, a.Latitude, a.Longitude, a.SourceAddress, a.At }),
            decisions = decisions.AsEnumerable().Reverse().Select(Json),
        });
    }

    private sealed record ActionRequest(string? Action, string? Reason);

    private static async Task<IResult> DeviceActionAsync(string serial, HttpContext context, IDeviceRegistry registry, Audit audit)
    {
        var (read, request) = await ReadBodyAsync<ActionRequest>(context);
        if (!read)
        {
            return Problem(StatusCodes.Status400BadRequest, "The body is not a JSON {action, reason} object.");
        }

        DeviceLifecycleState? target = request?.Action?.ToLowerInvariant() switch
        {
            "suspend" => DeviceLifecycleState.Suspended,
            "resume" => DeviceLifecycleState.Active,
            "revoke" => DeviceLifecycleState.Revoked,
            "decommission" => DeviceLifecycleState.Decommissioned,
            _ => null,
        };
        if (target is null)
        {
            return Problem(StatusCodes.Status400BadRequest, "action is suspend, resume, revoke or decommission.");
        }

        if (string.IsNullOrWhiteSpace(request!.Reason))
        {
            return Problem(StatusCodes.Status400BadRequest, "A reason is required: it goes into the device's history and the audit trail.");
        }

        var user = Session(context)!.User;
        try
        {
            var record = await registry.TransitionAsync(serial, target.Value, $"console:{user}", request.Reason, context.RequestAborted);
            audit.Post(context, serial, DecisionOutcome.Allow, ReasonCode.LifecycleTransition, $"admin:{request.Action!.ToLowerInvariant()}", $"{user}: {request.Reason}");
            return Results.Json(new { serial = record.Serial, state = record.State.ToString() });
        }
        catch (RegistryException ex)
        {
            var reason = ex.Code == RegistryException.DeviceNotFound ? ReasonCode.DeviceUnknown : ReasonCode.LifecycleTransitionInvalid;
            audit.Post(context, serial, DecisionOutcome.Deny, reason, $"admin:{request.Action!.ToLowerInvariant()}", $"{user}: refused: {ex.Message}");
            return Problem(ex.Code == RegistryException.DeviceNotFound ? StatusCodes.Status404NotFound : StatusCodes.Status409Conflict, $"{ex.Code}: {ex.Message}");
        }
    }

    private static async Task<IResult> QueryDecisionsAsync(HttpContext context, ConsoleDecisions decisions, bool alertsOnly, AlertAcknowledgements? acks, CancellationToken ct)
    {
        var q = context.Request.Query;
        var filter = Filter(q);
        var from = DateTimeOffset.TryParse(q["since"], out var since) ? since : DateTimeOffset.MinValue;
        var to = DateTimeOffset.TryParse(q["until"], out var until) ? until : DateTimeOffset.MaxValue;
        var limit = Math.Clamp(int.TryParse(q["limit"], out var l) ? l : 200, 1, 5000);
        var found = new Queue<DecisionEvent>();
        await foreach (var e in decisions.ReadAsync(from, ct))
        {
            if ((!alertsOnly || e.Kind == DecisionEvent.AlertKind) && e.Time >= from && e.Time <= to && filter(e))
            {
                found.Enqueue(e);
                if (found.Count > limit)
                {
                    found.Dequeue();
                }
            }
        }

        return Results.Json(found.Reverse().Select(e => acks is null ? Json(e) : WithAck(Json(e), acks.Find(e.Id))));
    }

    private static async Task StreamAsync(HttpContext context, ConsoleFeed feed)
    {
        var filter = Filter(context.Request.Query);
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
                    if (filter(e))
                    {
                        text.Append("id: ").Append(e.Id).Append("\ndata: ").Append(JsonSerializer.Serialize(Json(e))).Append("\n\n");
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

    private static IResult AcknowledgeAsync(string id, HttpContext context, AlertAcknowledgements acks, Audit audit)
    {
        var user = Session(context)!.User;
        acks.Add(id, new AlertAcknowledgements.Acknowledgement(user, DateTimeOffset.UtcNow, context.Request.Query["note"]));
        audit.Post(context, user, DecisionOutcome.Allow, ReasonCode.Allowed, "admin:ack", $"alert {id} acknowledged");
        return Results.NoContent();
    }

    private sealed record UserRequest(string? Name, string? Role);

    private static async Task<IResult> AddUserAsync(HttpContext context, ConsoleUsers users, Audit audit)
    {
        var (read, request) = await ReadBodyAsync<UserRequest>(context);
        if (!read)
        {
            return Problem(StatusCodes.Status400BadRequest, "The body is not a JSON {name, role} object.");
        }

        try
        {
            var password = users.Add(request?.Name ?? "", request?.Role ?? "");
            audit.Post(context, request!.Name, DecisionOutcome.Allow, ReasonCode.Allowed, "admin:user-add", $"{Session(context)!.User} added {request.Name} as {request.Role}");
            return Results.Json(new { name = request.Name, role = request.Role, oneTimePassword = password });
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            return Problem(StatusCodes.Status400BadRequest, ex.Message);
        }
    }

    private static Func<DecisionEvent, bool> Filter(IQueryCollection q)
    {
        var outcome = q["outcome"].ToString();
        var reason = q["reason"].ToString();
        var device = q["device"].ToString();
        var user = q["user"].ToString();
        var route = q["route"].ToString();
        var kind = q["kind"].ToString();
        return e => (outcome.Length == 0 || (outcome == "allow") == (e.Outcome == DecisionOutcome.Allow))
            && (reason.Length == 0 || ReasonCodes.Name(e.Reason) == reason)
            && (device.Length == 0 || (e.Subject == device && e.Listener != "user"))
            && (user.Length == 0 || (e.Subject == user && e.Listener == "user"))
            && (route.Length == 0 || e.Route == route)
            && (kind.Length == 0 || e.Kind == kind);
    }

    private static Dictionary<string, object?> Json(DecisionEvent e) => new()
    {
        ["id"] = e.Id, ["time"] = e.Time, ["kind"] = e.Kind, ["listener"] = e.Listener, ["subject"] = e.Subject, ["sourceAddress"] = e.SourceAddress,
        ["method"] = e.Method, ["path"] = e.Path, ["route"] = e.Route, ["outcome"] = e.Outcome == DecisionOutcome.Allow ? "allow" : "deny",
        ["reason"] = ReasonCodes.Name(e.Reason), ["node"] = e.Node, ["detail"] = e.Detail, ["latencyUs"] = Math.Round(e.LatencyMicroseconds, 1),
    };

    private static Dictionary<string, object?> WithAck(Dictionary<string, object?> e, AlertAcknowledgements.Acknowledgement? ack)
    {
        e["acknowledgedBy"] = ack?.By;
        e["acknowledgedAt"] = ack?.At;
        return e;
    }


    private static string? Token(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : context.Request.Cookies[CookieName];
    }

    private static ConsoleSessions.Session? Session(HttpContext context) => context.Items[typeof(ConsoleSessions.Session)] as ConsoleSessions.Session;

    /// <summary>Signed in, with at least <paramref name="role"/>; cookie-authenticated writes also need the anti-forgery header.</summary>
    private static Func<EndpointFilterInvocationContext, EndpointFilterDelegate, ValueTask<object?>> Require(string role) => async (invocation, next) =>
    {
        var context = invocation.HttpContext;
        var sessions = context.RequestServices.GetRequiredService<ConsoleSessions>();
        var viaCookie = !context.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase);
        var audit = context.RequestServices.GetRequiredService<Audit>();
        var token = Token(context);
        if (sessions.Find(token) is not { } session)
        {
            // No session at all, or a token/cookie that names none (expired, signed out, forged): each its own reason.
            var reason = string.IsNullOrEmpty(token) ? ReasonCode.AuthenticationRequired : ReasonCode.SessionInvalid;
            audit.PostRefusal(context, null, reason, string.IsNullOrEmpty(token) ? "no session token or cookie" : $"unknown or expired session {(viaCookie ? "cookie" : "token")}");
            return Problem(StatusCodes.Status401Unauthorized, "Sign in first (POST /api/login).");
        }

        if (viaCookie && !HttpMethods.IsGet(context.Request.Method) && !context.Request.Headers.ContainsKey(CsrfHeader))
        {
            audit.PostRefusal(context, session.User, ReasonCode.CsrfTokenInvalid, $"a cookie-authenticated {context.Request.Method} without the {CsrfHeader} header (cross-site request?)");
            return Problem(StatusCodes.Status403Forbidden, $"Writes from the browser need the {CsrfHeader} header.");
        }

        if (role == ConsoleRoles.Admin && session.Role != ConsoleRoles.Admin)
        {
            audit.Post(context, session.User, DecisionOutcome.Deny, ReasonCode.SubjectNotAllowed, "admin:" + context.Request.Path.Value, $"{session.User} ({session.Role}) is not {ConsoleRoles.Admin}");
            return Problem(StatusCodes.Status403Forbidden, $"This needs the {ConsoleRoles.Admin} role.");
        }

        context.Items[typeof(ConsoleSessions.Session)] = session;
        return await next(invocation);
    };

    private static IResult Problem(int status, string detail) => Results.Problem(detail: detail, statusCode: status);

    /// <summary>The JSON body; <c>Read</c> is false when the body is not JSON or not of that shape (the caller answers 400).</summary>
    private static async Task<(bool Read, T? Body)> ReadBodyAsync<T>(HttpContext context)
    {
        try
        {
            return (true, await context.Request.ReadFromJsonAsync<T>(context.RequestAborted));
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return (false, default); // InvalidOperationException: not a JSON content type
        }
    }
}

/// <summary>Posts console actions as <c>admin</c> decision events.</summary>
public sealed class Audit(IDecisionSink decisions, DecisionIdGenerator ids, TimeProvider timeProvider, AuditThrottle throttle)
{
    /// <summary>
    /// A refused console request (no session, bad token, no anti-forgery header, throttled sign-in), rate-limited per
    /// source and reason: beyond the limit it is counted into a per-minute summary instead of recorded alone.
    /// </summary>
    public void PostRefusal(HttpContext context, string? subject, ReasonCode reason, string detail)
    {
        if (throttle.Admit(context.Connection.RemoteIpAddress?.ToString(), reason, context.Request.Path.Value))
        {
            Post(context, subject, DecisionOutcome.Deny, reason, "console:" + context.Request.Path.Value, detail);
        }
        else
        {
            KtZeroTrust.Hosting.Listeners.RecordedDecision.Mark(context, KtZeroTrust.Hosting.Listeners.RecordedDecision.InSummary); // not again below
        }
    }

    public void Post(HttpContext context, string? subject, DecisionOutcome outcome, ReasonCode reason, string route, string detail, string kind = DecisionEvent.AdminKind)
    {
        var id = ids.Next();
        decisions.Post(new DecisionEvent
    {
        Id = id,
        Time = timeProvider.GetUtcNow(),
        Kind = kind,
        Listener = "console",
        Subject = subject,
        SourceAddress = context.Connection.RemoteIpAddress?.ToString(),
        SourcePort = context.Connection.RemotePort,
        Method = context.Request.Method,
        Path = context.Request.Path.Value,
        Route = route,
        Outcome = outcome,
        Reason = reason,
        Detail = detail,
    });
        KtZeroTrust.Hosting.Listeners.RecordedDecision.Mark(context, id);
    }
}
