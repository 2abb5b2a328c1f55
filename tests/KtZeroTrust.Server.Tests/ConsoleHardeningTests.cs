using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.SocConsole.Auditing;
using Microsoft.Extensions.DependencyInjection;

namespace KtZeroTrust.Server.Tests;

/// <summary>The console as an attacker meets it: refusals audited (and rate-limited), sign-in throttled and alerted.</summary>
public sealed class ConsoleHardeningTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Uri Api(string path) => server.ConsoleUri(path);

    private HttpClient Client(CookieContainer? cookies = null) => server.ConsoleClient(cookies);

    private async Task<string> AccountAsync(string name, string role)
    {
        var once = await server.Services.GetRequiredService<ConsoleUsers>().AddAsync(name, role, TestContext.Current.CancellationToken);
        using var client = Client();
        using var login = await client.PostAsJsonAsync(Api("/api/login"), new { user = name, password = once, newPassword = $"{name}-password-1" }, Ct);
        login.EnsureSuccessStatusCode();
        return $"{name}-password-1";
    }

    private async Task<HttpClient> SignedInAsync(string name, string password, CookieContainer? cookies = null)
    {
        var client = Client(cookies);
        using var login = await client.PostAsJsonAsync(Api("/api/login"), new { user = name, password }, Ct);
        login.EnsureSuccessStatusCode();
        if (cookies is null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (await login.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("token").GetString());
        }

        return client;
    }

    [Fact]
    public async Task RefusedConsoleRequests_AreAuditedWithTheirOwnReason_SourceAndPath()
    {
        using var anonymous = Client();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(Api("/api/devices?probe=none"), Ct)).StatusCode);
        using var forged = new HttpRequestMessage(HttpMethod.Get, Api("/api/decisions?probe=forged"));
        forged.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "forged-session-token");
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.SendAsync(forged, Ct)).StatusCode);
        var password = await AccountAsync("csrf-victim", ConsoleRoles.Analyst);
        var cookies = new CookieContainer();
        using var browser = await SignedInAsync("csrf-victim", password, cookies);
        Assert.Equal(HttpStatusCode.Forbidden, (await browser.PostAsJsonAsync(Api("/api/alerts/x/ack"), new { note = "cross-site" }, Ct)).StatusCode);

        var none = await server.DecisionAsync(d => d.Text("path") == "/api/devices" && d.Text("reason") == "authentication_required", "the session-less refusal");
        Assert.Equal(("admin", "deny", "127.0.0.1"), (none.Text("kind"), none.Text("outcome"), none.Text("sourceAddress")));
        await server.DecisionAsync(d => d.Text("path") == "/api/decisions" && d.Text("reason") == "session_invalid", "the forged-token refusal");
        var csrf = await server.DecisionAsync(d => d.Text("reason") == "csrf_token_invalid", "the anti-forgery refusal");
        Assert.Equal(("csrf-victim", "/api/alerts/x/ack"), (csrf.Text("subject"), csrf.Text("path")));
    }

    [Fact]
    public async Task AFloodOfRefusals_IsRecordedUpToTheLimit_ThenSummarised()
    {
        using var anonymous = Client();
        for (var i = 0; i < AuditThrottle.PerMinute + 15; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(Api("/api/summary"), Ct)).StatusCode);
        }

        server.Services.GetRequiredService<AuditThrottle>().Flush(); // the minute ends

        var summary = await server.DecisionAsync(d => d.Text("route") == "console:refusals" && d.Text("reason") == "authentication_required", "the flood's summary");
        Assert.Contains("more refusals", summary.Text("detail"), StringComparison.Ordinal);
        var single = (await server.DecisionsAsync()).Count(d => d.Text("path") == "/api/summary" && d.Text("reason") == "authentication_required" && d.Text("route") != "console:refusals");
        Assert.InRange(single, 1, AuditThrottle.PerMinute); // never one per request, never none
    }

    [Fact]
    public async Task WrongPasswords_AreThrottledPerAccount_Audited_AndABurstIsAlerted()
    {
        var password = await AccountAsync("throttled-user", ConsoleRoles.Analyst);
        using var client = Client();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < SignInGuard.BurstThreshold; i++)
        {
            using var wrong = await client.PostAsJsonAsync(Api("/api/login"), new { user = "throttled-user", password = "guess-" + i }, Ct);
            statuses.Add(wrong.StatusCode);
            if (wrong.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.True(wrong.Headers.RetryAfter?.Delta > TimeSpan.Zero, "a 429 without Retry-After");
            }
        }

        Assert.Equal(Enumerable.Repeat(HttpStatusCode.Unauthorized, SignInGuard.FreeFailures), statuses.Take(SignInGuard.FreeFailures));
        Assert.All(statuses.Skip(SignInGuard.FreeFailures), s => Assert.Equal(HttpStatusCode.TooManyRequests, s));
        using (var right = await client.PostAsJsonAsync(Api("/api/login"), new { user = "throttled-user", password }, Ct))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, right.StatusCode); // even the right password waits: no oracle
        }

        await server.DecisionAsync(d => d.Text("subject") == "throttled-user" && d.Text("reason") == "credentials_invalid", "the wrong password's reason");
        await server.DecisionAsync(d => d.Text("subject") == "throttled-user" && d.Text("reason") == "sign_in_throttled", "the throttled attempt");
        await server.DecisionAsync(d => d.Text("kind") == "alert" && d.Text("reason") == "sign_in_burst" && d.Text("subject") == "throttled-user", "the sign-in burst alert");
    }

    [Fact]
    public async Task APassword_CanBeChangedLater_WithTheCurrentOne()
    {
        var password = await AccountAsync("changing-user", ConsoleRoles.Analyst);
        using var session = await SignedInAsync("changing-user", password);

        Assert.Equal(HttpStatusCode.Forbidden, (await session.PostAsJsonAsync(Api("/api/password"), new { currentPassword = "not-it", newPassword = "a-new-password-2" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await session.PostAsJsonAsync(Api("/api/password"), new { currentPassword = password, newPassword = "short" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await session.PostAsJsonAsync(Api("/api/password"), new { currentPassword = password, newPassword = "a-new-password-2" }, Ct)).StatusCode);

        using var client = Client();
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.PostAsJsonAsync(Api("/api/login"), new { user = "changing-user", password }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync(Api("/api/login"), new { user = "changing-user", password = "a-new-password-2" }, Ct)).StatusCode);
        await server.DecisionAsync(d => d.Text("route") == "console:password" && d.Text("outcome") == "allow" && d.Text("subject") == "changing-user", "the audited change");
    }

    [Fact]
    public async Task AnActionTheDevicesStateDoesNotAllow_IsAuditedWithThatReason()
    {
        var password = await AccountAsync("acting-admin", ConsoleRoles.Admin);
        using var admin = await SignedInAsync("acting-admin", password);
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync(Api("/api/devices/FC-0006/actions"), new { action = "revoke", reason = "stolen" }, Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsJsonAsync(Api("/api/devices/FC-0006/actions"), new { action = "revoke", reason = "again" }, Ct)).StatusCode);

        await server.DecisionAsync(d => d.Text("subject") == "FC-0006" && d.Text("route") == "admin:revoke" && d.Text("reason") == "lifecycle_transition_invalid", "the refused action's reason");
    }
}
