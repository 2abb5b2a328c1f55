using System.Security.Claims;
using System.Text.Encodings.Web;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.SocConsole.Auditing;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.SocConsole.Authentication;

/// <summary>The console's authorization policies: every API call needs one.</summary>
public static class ConsolePolicies
{
    /// <summary>Signed in as an analyst or an administrator: reads, acknowledgements, one's own password.</summary>
    public const string Analyst = "console-analyst";

    /// <summary>Signed in as an administrator: device actions, adding users.</summary>
    public const string Admin = "console-admin";
}

/// <summary>
/// Who is signed in to the console, on ASP.NET Core's authentication: the browser through the cookie handler (the
/// cookie holds a protected key to a <see cref="ConsoleSessions"/> entry), API clients through a bearer token of the
/// same sessions; a policy scheme picks one per request. Every refusal is audited: no or an unknown session (401),
/// the wrong role (403), a browser write without the anti-forgery token (403).
/// </summary>
public static class ConsoleAuthentication
{
    public const string Scheme = "zt-console";
    public const string CookieScheme = "zt-console-cookie";
    public const string TokenScheme = "zt-console-token";
    public const string CookieName = "zt_console";

    /// <summary>The anti-forgery header browser writes carry (the token from <c>GET /api/me</c>).</summary>
    public const string AntiforgeryHeader = "X-ZT-Console";

    public static void AddConsoleAuthentication(this IServiceCollection services)
    {
        services.AddAuthentication()
            .AddPolicyScheme(Scheme, "SOC console", o => o.ForwardDefaultSelector = context => HasBearer(context.Request) ? TokenScheme : CookieScheme)
            .AddScheme<AuthenticationSchemeOptions, ConsoleTokenHandler>(TokenScheme, null)
            .AddCookie(CookieScheme, o =>
            {
                o.Cookie.Name = CookieName;
                o.Cookie.HttpOnly = true;
                o.Cookie.SecurePolicy = CookieSecurePolicy.Always;
                // Lax, not Strict: after an identity provider sign-in the browser arrives from the provider's site.
                // Writes are guarded by the anti-forgery token, which another site cannot read.
                o.Cookie.SameSite = SameSiteMode.Lax;
                o.ExpireTimeSpan = TimeSpan.FromHours(8);
                o.SlidingExpiration = false;
                o.Events.OnRedirectToLogin = context => RefuseUnauthenticatedAsync(context.HttpContext, context.Request.Cookies.ContainsKey(CookieName), "cookie");
                o.Events.OnRedirectToAccessDenied = context => RefuseForbiddenAsync(context.HttpContext);
            });
        services.AddOptions<CookieAuthenticationOptions>(CookieScheme).Configure<ConsoleSessions>((o, sessions) => o.SessionStore = sessions);
        services.AddAuthorizationBuilder()
            .AddPolicy(ConsolePolicies.Analyst, p => p.AddAuthenticationSchemes(Scheme).RequireAuthenticatedUser().RequireRole(ConsoleRoles.Analyst, ConsoleRoles.Admin))
            .AddPolicy(ConsolePolicies.Admin, p => p.AddAuthenticationSchemes(Scheme).RequireAuthenticatedUser().RequireRole(ConsoleRoles.Admin));
        services.AddAntiforgery(o =>
        {
            o.HeaderName = AntiforgeryHeader;
            o.Cookie.Name = "zt_console_af";
            o.Cookie.SecurePolicy = CookieSecurePolicy.Always;
            o.Cookie.SameSite = SameSiteMode.Strict;
        });
    }

    /// <summary>A session as a signed-in principal: its user name and role.</summary>
    public static AuthenticationTicket Ticket(ConsoleSessions.Session session, string scheme)
    {
        ArgumentNullException.ThrowIfNull(session);
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, session.User), new Claim(ClaimTypes.Role, session.Role)], scheme);
        return new AuthenticationTicket(new ClaimsPrincipal(identity), new AuthenticationProperties { ExpiresUtc = session.ExpiresAt }, scheme);
    }

    /// <summary>The principal a sign-in (password or identity provider) opens a session for.</summary>
    public static ClaimsPrincipal Principal(string user, string role)
        => new(new ClaimsIdentity([new Claim(ClaimTypes.Name, user), new Claim(ClaimTypes.Role, role)], CookieScheme));

    public static bool HasBearer(HttpRequest request) => request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase);

    public static string? BearerToken(HttpRequest request)
        => HasBearer(request) ? request.Headers.Authorization.ToString()[7..].Trim() : null;

    /// <summary>
    /// Browser writes need the anti-forgery token (ASP.NET Core's antiforgery, sent in <see cref="AntiforgeryHeader"/>);
    /// API clients with a bearer token are not a browser another site can drive.
    /// </summary>
    public static RouteHandlerBuilder RequireAntiforgeryForBrowsers(this RouteHandlerBuilder builder) => builder.AddEndpointFilter(async (invocation, next) =>
    {
        var context = invocation.HttpContext;
        if (HasBearer(context.Request) || HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method))
        {
            return await next(invocation);
        }

        if (!await context.RequestServices.GetRequiredService<IAntiforgery>().IsRequestValidAsync(context))
        {
            context.RequestServices.GetRequiredService<Audit>().PostRefusal(context, context.User.Identity?.Name, ReasonCode.CsrfTokenInvalid,
                $"a cookie-authenticated {context.Request.Method} without a valid {AntiforgeryHeader} anti-forgery token (cross-site request?)");
            return Results.Problem(detail: $"Writes from the browser need the {AntiforgeryHeader} header with the token from GET /api/me.", statusCode: StatusCodes.Status403Forbidden);
        }

        return await next(invocation);
    });

    internal static Task RefuseUnauthenticatedAsync(HttpContext context, bool presented, string via)
    {
        // No session at all, or a token or cookie that names none (expired, signed out, forged): each its own reason.
        var reason = presented ? ReasonCode.SessionInvalid : ReasonCode.AuthenticationRequired;
        context.RequestServices.GetRequiredService<Audit>().PostRefusal(context, null, reason, presented ? $"unknown or expired session {via}" : "no session token or cookie");
        return Results.Problem(detail: "Sign in first (POST /api/login).", statusCode: StatusCodes.Status401Unauthorized).ExecuteAsync(context);
    }

    internal static Task RefuseForbiddenAsync(HttpContext context)
    {
        var user = context.User.Identity?.Name;
        var role = context.User.FindFirstValue(ClaimTypes.Role);
        context.RequestServices.GetRequiredService<Audit>().Post(context, user, DecisionOutcome.Deny, ReasonCode.SubjectNotAllowed, "admin:" + context.Request.Path.Value, $"{user} ({role}) is not {ConsoleRoles.Admin}");
        return Results.Problem(detail: $"This needs the {ConsoleRoles.Admin} role.", statusCode: StatusCodes.Status403Forbidden).ExecuteAsync(context);
    }
}

/// <summary>API clients: <c>Authorization: Bearer</c> with the token from <c>POST /api/login</c>.</summary>
internal sealed class ConsoleTokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ConsoleSessions sessions)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (ConsoleAuthentication.BearerToken(Request) is not { Length: > 0 } token)
        {
            return AuthenticateResult.NoResult();
        }

        return await sessions.FindAsync(token, Context.RequestAborted) is { } session
            ? AuthenticateResult.Success(ConsoleAuthentication.Ticket(session, Scheme.Name))
            : AuthenticateResult.Fail("unknown or expired session token");
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
        => ConsoleAuthentication.RefuseUnauthenticatedAsync(Context, ConsoleAuthentication.BearerToken(Request) is { Length: > 0 }, "token");

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) => ConsoleAuthentication.RefuseForbiddenAsync(Context);
}
