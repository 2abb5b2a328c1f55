using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.Tests.Common;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// Two console nodes sharing a real Redis (<c>ZeroTrust:Console:Redis</c>): a session made on one is good on the other,
/// by bearer token and by browser cookie (one Data Protection key ring), anti-forgery tokens included, and so is an
/// account; a node's restart
/// signs nobody out; a Redis that does not answer signs nobody in (fail closed), and service comes back with it.
/// </summary>
public sealed class ConsoleSharedStateTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>, IAsyncDisposable
{
    private readonly TempDirectory _temp = new("ktzt-console-shared");
    private readonly string _prefix = $"test-{Guid.NewGuid():N}:";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ASessionMadeOnOneNode_IsGoodOnTheOther_SurvivesARestart_AndARedisThatDoesNotAnswerSignsNobodyIn()
    {
        var (portsA, portsB) = (FreePorts.Next(5), FreePorts.Next(5));
        var a = await StartAsync("a", portsA);
        var b = await StartAsync("b", portsB);
        try
        {
            var once = await a.Services.GetRequiredService<ConsoleUsers>().AddAsync("shift-lead", ConsoleRoles.Admin, TestContext.Current.CancellationToken);
            var cookies = new CookieContainer();
            using var onA = Client(cookies);
            using var login = await onA.PostAsJsonAsync(Uri(portsA, "/api/login"), new { user = "shift-lead", password = once, newPassword = "shift-lead-password-1" }, Ct);
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
            var token = (await login.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("token").GetString()!;
            var antiforgery = (await onA.GetFromJsonAsync<JsonElement>(Uri(portsA, "/api/me"), Ct)).GetProperty("antiforgeryToken").GetString()!;

            // Node B never saw this sign-in: the token, the cookie and the anti-forgery token made on A are good on B,
            // and the account (made on A, its password changed on A) signs in on B.
            await AssertSignedInAsync(portsB, token, cookies);
            using (var onBLogin = await Client().PostAsJsonAsync(Uri(portsB, "/api/login"), new { user = "shift-lead", password = "shift-lead-password-1" }, Ct))
            {
                Assert.Equal(HttpStatusCode.OK, onBLogin.StatusCode);
            }

            using (var onB = Client(cookies))
            using (var write = new HttpRequestMessage(HttpMethod.Post, Uri(portsB, "/api/alerts/01NOSUCHALERT/ack")) { Content = JsonContent.Create(new { note = "seen on B" }) })
            {
                write.Headers.Add("X-ZT-Console", antiforgery);
                using var response = await onB.SendAsync(write, Ct);
                Assert.NotEqual(HttpStatusCode.Forbidden, response.StatusCode); // not csrf_token_invalid: B reads A's anti-forgery token
                Assert.NotEqual(HttpStatusCode.Unauthorized, response.StatusCode);
            }

            // Node A restarts (a rolling upgrade): nobody is signed out, on either node.
            await a.StopAsync(Ct);
            await a.DisposeAsync();
            a = await StartAsync("a", portsA);
            await AssertSignedInAsync(portsA, token, cookies);

            // Redis stops answering: no session is accepted and no sign-in is made (fail closed), with its reason.
            await redis.PauseAsync();
            try
            {
                using var refused = await ClientWithToken(token).GetAsync(Uri(portsB, "/api/me"), Ct);
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
                using var noLogin = await Client().PostAsJsonAsync(Uri(portsA, "/api/login"), new { user = "shift-lead", password = "shift-lead-password-1" }, Ct);
                Assert.Equal(HttpStatusCode.ServiceUnavailable, noLogin.StatusCode);
            }
            finally
            {
                await redis.ResumeAsync();
            }

            await Eventually.Until(() => ClientWithToken(token).GetAsync(Uri(portsB, "/api/me"), Ct), r => r.StatusCode == HttpStatusCode.OK, "the session to be good again once Redis answers");
            using var afterA = await Client().PostAsJsonAsync(Uri(portsA, "/api/login"), new { user = "shift-lead", password = "shift-lead-password-1" }, Ct);
            Assert.Equal(HttpStatusCode.OK, afterA.StatusCode);
        }
        finally
        {
            await a.StopAsync(Ct);
            await a.DisposeAsync();
            await b.StopAsync(Ct);
            await b.DisposeAsync();
        }
    }

    [Fact]
    public async Task ARedisThatIsDown_RefusesSignInsWithItsReason_AndTheNodeStillStarts()
    {
        var ports = FreePorts.Next(5);
        // A Redis nobody listens on: the node starts (the connector and the first-start check log it), and a sign-in is
        // refused with a reason rather than let through or answered 500.
        var node = await StartAsync("down", ports, $"127.0.0.1:{FreePorts.Next(1)[0]},connectTimeout=500,abortConnect=false");
        try
        {
            using var login = await Client().PostAsJsonAsync(Uri(ports, "/api/login"), new { user = "admin", password = "whatever-it-was-1" }, Ct);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, login.StatusCode);
            Assert.Contains("store is unavailable", await login.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
            using var me = await ClientWithToken("no-such-session").GetAsync(Uri(ports, "/api/me"), Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
        }
        finally
        {
            await node.StopAsync(Ct);
            await node.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _temp.Dispose();
        await ValueTask.CompletedTask;
    }

    private async Task<WebApplication> StartAsync(string name, int[] ports, string? redisConfiguration = null)
    {
        var args = ServerFixture.Arguments(_temp.Combine("pki"), _temp.Combine("data-" + name), ports, "Development")
            .Concat(["--ZeroTrust:Roles:Gateway=false", "--ZeroTrust:Roles:Attestation=false", "--ZeroTrust:DemoUpstream:Enabled=false",
                $"--ZeroTrust:Console:Redis={redisConfiguration ?? redis.Configuration}", $"--ZeroTrust:Console:KeyPrefix={_prefix}"])
            .ToArray();
        var app = ZeroTrustServer.Build(args);
        await ZeroTrustServer.PrepareAsync(app);
        await app.StartAsync(Ct);
        return app;
    }

    private async Task AssertSignedInAsync(int[] ports, string token, CookieContainer cookies)
    {
        using var byToken = await ClientWithToken(token).GetAsync(Uri(ports, "/api/me"), Ct);
        Assert.Equal(HttpStatusCode.OK, byToken.StatusCode);
        using var byCookie = await Client(cookies).GetAsync(Uri(ports, "/api/me"), Ct);
        Assert.Equal(HttpStatusCode.OK, byCookie.StatusCode);
        Assert.Equal("shift-lead", (await byCookie.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("user").GetString());
    }

    private static Uri Uri(int[] ports, string path) => new($"https://127.0.0.1:{ports[3]}{path}");

    private HttpClient ClientWithToken(string token)
    {
        var client = Client();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    private HttpClient Client(CookieContainer? cookies = null)
    {
        var root = PemFiles.ReadCertificate(new KtZeroTrust.Pki.DevPki.DevPkiLayout(_temp.Combine("pki")).TlsRootCertificate);
        return new HttpClient(new SocketsHttpHandler
        {
            CookieContainer = cookies ?? new CookieContainer(),
            UseCookies = cookies is not null,
            SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => c is System.Security.Cryptography.X509Certificates.X509Certificate2 s && TrustPolicies.ChainsTo(s, root) },
        });
    }
}
