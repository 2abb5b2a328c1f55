using System.Security.Claims;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.SocConsole.Auditing;
using KtZeroTrust.SocConsole.Authentication;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using static KtZeroTrust.SocConsole.Endpoints.ConsoleResults;

namespace KtZeroTrust.SocConsole.Endpoints;

/// <summary>Signing in and out (password or identity provider), the signed-in user, and changing one's password.</summary>
internal static class SessionEndpoints
{
    public static void Map(RouteGroupBuilder api)
    {
        api.MapPost("/login", LoginAsync);
        api.MapPost("/logout", LogoutAsync);
        api.MapGet("/oidc", (ConsoleOidcOptions oidc) => Results.Json(new { enabled = oidc.Enabled }));
        api.MapGet("/oidc/login", (ConsoleOidcOptions oidc) => oidc.Enabled ? ConsoleOidc.Begin() : Problem(StatusCodes.Status404NotFound, "No identity provider is configured for the console."));
        api.MapMethods(ConsoleOidc.CallbackPath["/api".Length..], ["GET", "POST"], (HttpContext context, ConsoleOidcOptions oidc) =>
            oidc.Enabled ? ConsoleOidc.CompleteAsync(context) : Task.FromResult(Problem(StatusCodes.Status404NotFound, "No identity provider is configured for the console.")));
        api.MapGet("/oidc/logout", async (HttpContext context, ConsoleSessions sessions, ConsoleOidcOptions oidc) =>
        {
            await EndSessionAsync(context, sessions);
            return oidc.Enabled ? ConsoleOidc.SignOut() : Results.Redirect("/");
        });
        api.MapPost("/password", ChangePasswordAsync).RequireAuthorization(ConsolePolicies.Analyst).RequireAntiforgeryForBrowsers();
        api.MapGet("/me", (HttpContext context, IAntiforgery antiforgery) => Results.Json(new
        {
            user = context.User.Identity!.Name,
            role = context.User.FindFirstValue(ClaimTypes.Role),
            // The browser's anti-forgery token for its writes (bound to this user; another site cannot read it).
            antiforgeryToken = ConsoleAuthentication.HasBearer(context.Request) ? null : antiforgery.GetAndStoreTokens(context).RequestToken,
        })).RequireAuthorization(ConsolePolicies.Analyst);
    }

    private sealed record LoginRequest(string? User, string? Password, string? NewPassword);

    private static async Task<IResult> LoginAsync(HttpContext context, ConsoleUsers users, ConsoleSessions sessions, Audit audit, SignInGuard guard)
    {
        var (read, request) = await ReadBodyAsync<LoginRequest>(context);
        if (!read)
        {
            return Problem(StatusCodes.Status400BadRequest, "The body is not a JSON {user, password} object.");
        }

        var (refusal, account) = await CheckPasswordAsync(context, users, audit, guard, request?.User ?? "", request?.Password, "console:login",
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
                await users.ChangePasswordAsync(account.Name, request.NewPassword, context.RequestAborted);
            }
            catch (ArgumentException ex)
            {
                return Problem(StatusCodes.Status400BadRequest, ex.Message);
            }
        }

        // One session: its token for API clients, and the browser's cookie naming the same session.
        string token;
        try
        {
            token = await sessions.CreateAsync(account.Name, account.Role, context.RequestAborted);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The shared session store is away: nobody is signed in until it is back (fail closed), and the operator is told why.
            audit.Post(context, account.Name, DecisionOutcome.Deny, ReasonCode.SessionStoreUnavailable, "console:login", $"session store unavailable: {ex.GetType().Name}");
            return Problem(StatusCodes.Status503ServiceUnavailable, "The console's session store is unavailable; try again shortly.");
        }


        await context.SignInAsync(ConsoleAuthentication.CookieScheme, ConsoleAuthentication.Principal(account.Name, account.Role),
            new AuthenticationProperties(new Dictionary<string, string?> { [ConsoleSessions.SessionItem] = token }) { IsPersistent = true });
        audit.Post(context, account.Name, DecisionOutcome.Allow, ReasonCode.Allowed, "console:login", $"signed in as {account.Role}");
        return Results.Json(new { token, user = account.Name, role = account.Role });
    }

    private static async Task<IResult> LogoutAsync(HttpContext context, ConsoleSessions sessions)
    {
        await EndSessionAsync(context, sessions);
        return Results.NoContent();
    }

    private static async Task EndSessionAsync(HttpContext context, ConsoleSessions sessions)
    {
        await sessions.EndAsync(ConsoleAuthentication.BearerToken(context.Request), context.RequestAborted);
        await context.SignOutAsync(ConsoleAuthentication.CookieScheme); // ends the cookie's session and deletes the cookie
    }

    /// <summary>
    /// The one password check (sign-in, password change): refused unread while the account or source waits (429,
    /// Retry-After), a wrong password audited as <c>credentials_invalid</c>; either counts toward the burst alert.
    /// </summary>
    private static async Task<(IResult? Refusal, ConsoleUsers.Account? Account)> CheckPasswordAsync(HttpContext context, ConsoleUsers users, Audit audit, SignInGuard guard,
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

        ConsoleUsers.Account? account;
        try
        {
            account = await users.VerifyAsync(name, password ?? "", context.RequestAborted);
        }
        catch (Exception ex) when (ex is StackExchange.Redis.RedisException or TimeoutException or IOException)
        {
            // The account store is away: nobody signs in until it is back (fail closed), and the operator is told why.
            audit.Post(context, name, DecisionOutcome.Deny, ReasonCode.SessionStoreUnavailable, route, $"account store unavailable: {ex.GetType().Name}");
            return (Problem(StatusCodes.Status503ServiceUnavailable, "The console's account store is unavailable; try again shortly."), null);
        }

        if (account is null)
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
                $"{SignInGuard.BurstThreshold} or more failed sign-ins for {burst} within {SignInGuard.Window.TotalMinutes} minutes", DecisionKind.Alert);
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

        var user = User(context);
        var (refusal, account) = await CheckPasswordAsync(context, users, audit, guard, user, request.CurrentPassword, "console:password",
            StatusCodes.Status403Forbidden, "The current password is wrong."); // the same guessing, through another door
        if (account is null)
        {
            return refusal!;
        }

        try
        {
            await users.ChangePasswordAsync(user, request.NewPassword ?? "", context.RequestAborted);
        }
        catch (ArgumentException ex)
        {
            audit.Post(context, user, DecisionOutcome.Deny, ReasonCode.PasswordPolicyViolation, "console:password", ex.Message);
            return Problem(StatusCodes.Status400BadRequest, ex.Message);
        }

        audit.Post(context, user, DecisionOutcome.Allow, ReasonCode.Allowed, "console:password", $"{user} changed their password");
        return Results.NoContent();
    }
}
