using System.Security.Claims;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.SocConsole.Authentication;
using KtZeroTrust.Tests.Common;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Logging.Abstractions;

namespace KtZeroTrust.Console.Tests;

public sealed class ConsoleSessionsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ACookieSignIn_JoinsThePasswordSignInsSession_SoSigningOutEndsBoth()
    {
        var sessions = Sessions(TimeProvider.System);
        ITicketStore store = sessions;
        var token = await sessions.CreateAsync("alice", ConsoleRoles.Analyst, Ct);
        var ticket = new AuthenticationTicket(ConsoleAuthentication.Principal("alice", ConsoleRoles.Analyst),
            new AuthenticationProperties(new Dictionary<string, string?> { [ConsoleSessions.SessionItem] = token }), ConsoleAuthentication.CookieScheme);

        var key = await store.StoreAsync(ticket, Ct);
        Assert.Equal(token, key); // the cookie names the same session as the bearer token
        var back = await store.RetrieveAsync(key, Ct);
        Assert.Equal(("alice", ConsoleRoles.Analyst), (back!.Principal.Identity!.Name, back.Principal.FindFirstValue(ClaimTypes.Role)));

        await store.RemoveAsync(key, Ct); // the browser signs out
        Assert.Null(await sessions.FindAsync(token, Ct)); // and the token is dead too
        Assert.Null(await store.RetrieveAsync(key, Ct));
    }

    [Fact]
    public async Task AnIdentityProviderSignIn_GetsItsOwnSession_AndAForgedSessionItemIsNotJoined()
    {
        var sessions = Sessions(TimeProvider.System);
        ITicketStore store = sessions;
        var ticket = new AuthenticationTicket(ConsoleAuthentication.Principal("bob", ConsoleRoles.Admin),
            new AuthenticationProperties(new Dictionary<string, string?> { [ConsoleSessions.SessionItem] = "made-up" }), ConsoleAuthentication.CookieScheme);
        var key = await store.StoreAsync(ticket, Ct);
        Assert.NotEqual("made-up", key);
        var session = await sessions.FindAsync(key, Ct);
        Assert.Equal(("bob", ConsoleRoles.Admin), (session!.User, session.Role));
    }

    [Fact]
    public async Task ASession_EndsAtItsLifetime()
    {
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var sessions = Sessions(clock);
        var token = await sessions.CreateAsync("carol", ConsoleRoles.Analyst, Ct);
        clock.Advance(sessions.Lifetime - TimeSpan.FromSeconds(1));
        Assert.NotNull(await sessions.FindAsync(token, Ct));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(await sessions.FindAsync(token, Ct));
    }

    [Fact]
    public async Task AStoreThatFails_SignsNobodyIn_AndRefusesToMakeASession()
    {
        var sessions = new ConsoleSessions(new FailingStore(), TimeProvider.System, NullLogger<ConsoleSessions>.Instance);
        Assert.Null(await sessions.FindAsync("any-token", Ct)); // fail closed, never an exception into the handler
        await Assert.ThrowsAsync<InvalidOperationException>(() => sessions.CreateAsync("dave", ConsoleRoles.Admin, Ct));
        await sessions.EndAsync("any-token", Ct); // signing out still completes (the cookie is deleted by the caller)
    }

    private static ConsoleSessions Sessions(TimeProvider clock) => new(new MemoryConsoleSessionStore(), clock, NullLogger<ConsoleSessions>.Instance);

    private sealed class FailingStore : IConsoleSessionStore
    {
        public Task SaveAsync(string key, ConsoleSessions.Session session, CancellationToken cancellationToken) => throw new InvalidOperationException("store down");

        public Task<ConsoleSessions.Session?> FindAsync(string key, CancellationToken cancellationToken) => throw new InvalidOperationException("store down");

        public Task RemoveAsync(string key, CancellationToken cancellationToken) => throw new InvalidOperationException("store down");
    }
}
