using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Logging;

namespace KtZeroTrust.SocConsole.Authentication;

/// <summary>
/// Signed-in console sessions, kept in an <see cref="IConsoleSessionStore"/> (this node's memory by default; Redis,
/// shared by every console node, when <c>ZeroTrust:Console:Redis</c> is set). Tokens are stored hashed. One session
/// serves both ways in: the bearer token API clients get at sign-in, and the browser's cookie, whose handler keeps only
/// this session's key in the cookie (<see cref="ITicketStore"/>), so signing out, or the fixed lifetime ending, ends it
/// for both. A store that cannot answer signs nobody in (fail closed).
/// </summary>
public sealed partial class ConsoleSessions(IConsoleSessionStore store, TimeProvider timeProvider, ILogger<ConsoleSessions> logger) : ITicketStore
{
    /// <summary>The ticket property naming the session a cookie sign-in joins (set by the password sign-in).</summary>
    internal const string SessionItem = "zt.session";

    public sealed record Session(string User, string Role, DateTimeOffset ExpiresAt);

    public TimeSpan Lifetime { get; init; } = TimeSpan.FromHours(8);

    /// <summary>A new session's token; throws when the store cannot keep it.</summary>
    public async Task<string> CreateAsync(string user, string role, CancellationToken cancellationToken = default)
    {
        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        await store.SaveAsync(Key(token), new Session(user, role, timeProvider.GetUtcNow() + Lifetime), cancellationToken);
        return token;
    }

    /// <summary>The live session of <paramref name="token"/>; null when there is none, it expired, or the store cannot answer.</summary>
    public async Task<Session?> FindAsync(string? token, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(token))
        {
            return null;
        }

        Session? session;
        try
        {
            session = await store.FindAsync(Key(token), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogStoreFailed(logger, ex);
            return null;
        }

        if (session is not null && session.ExpiresAt <= timeProvider.GetUtcNow())
        {
            await EndAsync(token, cancellationToken);
            return null;
        }

        return session;
    }

    public async Task EndAsync(string? token, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(token))
        {
            return;
        }

        try
        {
            await store.RemoveAsync(Key(token), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogStoreFailed(logger, ex); // the session still expires by itself; the cookie is deleted all the same
        }
    }

    async Task<string> ITicketStore.StoreAsync(AuthenticationTicket ticket)
    {
        // The password sign-in hands over the session it made for the bearer token; an OIDC sign-in gets a new one.
        if (ticket.Properties.Items.TryGetValue(SessionItem, out var token) && await FindAsync(token) is not null)
        {
            return token!;
        }

        var principal = ticket.Principal;
        return await CreateAsync(principal.Identity?.Name ?? "unknown", principal.FindFirstValue(ClaimTypes.Role) ?? "");
    }

    Task ITicketStore.RenewAsync(string key, AuthenticationTicket ticket) => Task.CompletedTask; // a session's lifetime is fixed

    async Task<AuthenticationTicket?> ITicketStore.RetrieveAsync(string key)
        => await FindAsync(key) is { } session ? ConsoleAuthentication.Ticket(session, ConsoleAuthentication.CookieScheme) : null;

    Task ITicketStore.RemoveAsync(string key) => EndAsync(key);

    private static string Key(string token) => Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token)));

    [LoggerMessage(EventId = ConsoleEventIds.SessionStoreFailed, Level = LogLevel.Error, Message = "The console session store did not answer: nobody is signed in by it until it does")]
    private static partial void LogStoreFailed(ILogger logger, Exception exception);
}
