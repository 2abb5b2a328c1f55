using System.Security.Claims;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.SocConsole.Authentication;
using KtZeroTrust.Tests.Common;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;

namespace KtZeroTrust.Console.Tests;

public sealed class ConsoleSessionsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ACookieSignIn_JoinsThePasswordSignInsSession_SoSigningOutEndsBoth()
    {
        var sessions = new ConsoleSessions(TimeProvider.System);
        ITicketStore store = sessions;
        var token = sessions.Create("alice", ConsoleRoles.Analyst);
        var ticket = new AuthenticationTicket(ConsoleAuthentication.Principal("alice", ConsoleRoles.Analyst),
            new AuthenticationProperties(new Dictionary<string, string?> { [ConsoleSessions.SessionItem] = token }), ConsoleAuthentication.CookieScheme);

        var key = await store.StoreAsync(ticket, Ct);
        Assert.Equal(token, key); // the cookie names the same session as the bearer token
        var back = await store.RetrieveAsync(key, Ct);
        Assert.Equal(("alice", ConsoleRoles.Analyst), (back!.Principal.Identity!.Name, back.Principal.FindFirstValue(ClaimTypes.Role)));

        await store.RemoveAsync(key, Ct); // the browser signs out
        Assert.Null(sessions.Find(token)); // and the token is dead too
        Assert.Null(await store.RetrieveAsync(key, Ct));
    }

    [Fact]
    public async Task AnIdentityProviderSignIn_GetsItsOwnSession_AndAForgedSessionItemIsNotJoined()
    {
        var sessions = new ConsoleSessions(TimeProvider.System);
        ITicketStore store = sessions;
        var ticket = new AuthenticationTicket(ConsoleAuthentication.Principal("bob", ConsoleRoles.Admin),
            new AuthenticationProperties(new Dictionary<string, string?> { [ConsoleSessions.SessionItem] = "made-up" }), ConsoleAuthentication.CookieScheme);
        var key = await store.StoreAsync(ticket, Ct);
        Assert.NotEqual("made-up", key);
        Assert.Equal(("bob", ConsoleRoles.Admin), (sessions.Find(key)!.User, sessions.Find(key)!.Role));
    }

    [Fact]
    public void ASession_EndsAtItsLifetime()
    {
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var sessions = new ConsoleSessions(clock) { Lifetime = TimeSpan.FromHours(8) };
        var token = sessions.Create("carol", ConsoleRoles.Analyst);
        clock.Advance(TimeSpan.FromHours(8) - TimeSpan.FromSeconds(1));
        Assert.NotNull(sessions.Find(token));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(sessions.Find(token));
    }
}
