using System.Collections.Concurrent;
using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;

namespace KtZeroTrust.SocConsole.Authentication;

/// <summary>
/// Signed-in console sessions, in memory (a restart signs everyone out; a shared store is the scale-out issue's).
/// Tokens are stored hashed. One session serves both ways in: the bearer token API clients get at sign-in, and the
/// browser's cookie, whose handler keeps only this session's key in the cookie (<see cref="ITicketStore"/>), so
/// signing out, or the fixed lifetime ending, ends it for both.
/// </summary>
public sealed class ConsoleSessions(TimeProvider timeProvider) : ITicketStore
{
    /// <summary>The ticket property naming the session a cookie sign-in joins (set by the password sign-in).</summary>
    internal const string SessionItem = "zt.session";

    private readonly ConcurrentDictionary<string, Session> _sessions = new(StringComparer.Ordinal);

    public sealed record Session(string User, string Role, DateTimeOffset ExpiresAt);

    public TimeSpan Lifetime { get; init; } = TimeSpan.FromHours(8);

    public string Create(string user, string role)
    {
        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        _sessions[Key(token)] = new Session(user, role, timeProvider.GetUtcNow() + Lifetime);
        return token;
    }

    public Session? Find(string? token)
    {
        if (string.IsNullOrEmpty(token) || !_sessions.TryGetValue(Key(token), out var session))
        {
            return null;
        }

        if (session.ExpiresAt <= timeProvider.GetUtcNow())
        {
            _sessions.TryRemove(Key(token), out _);
            return null;
        }

        return session;
    }

    public void End(string? token)
    {
        if (!string.IsNullOrEmpty(token))
        {
            _sessions.TryRemove(Key(token), out _);
        }
    }

    Task<string> ITicketStore.StoreAsync(AuthenticationTicket ticket)
    {
        // The password sign-in hands over the session it made for the bearer token; an OIDC sign-in gets a new one.
        if (ticket.Properties.Items.TryGetValue(SessionItem, out var token) && Find(token) is not null)
        {
            return Task.FromResult(token!);
        }

        var principal = ticket.Principal;
        return Task.FromResult(Create(principal.Identity?.Name ?? "unknown", principal.FindFirstValue(ClaimTypes.Role) ?? ""));
    }

    Task ITicketStore.RenewAsync(string key, AuthenticationTicket ticket) => Task.CompletedTask; // a session's lifetime is fixed

    Task<AuthenticationTicket?> ITicketStore.RetrieveAsync(string key)
        => Task.FromResult(Find(key) is { } session ? ConsoleAuthentication.Ticket(session, ConsoleAuthentication.CookieScheme) : null);

    Task ITicketStore.RemoveAsync(string key)
    {
        End(key);
        return Task.CompletedTask;
    }

    private static string Key(string token) => Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token)));
}
