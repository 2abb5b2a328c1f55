using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.SocConsole.Auditing;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.DependencyInjection;

namespace KtZeroTrust.Server.Tests;

/// <summary>The admin API over real TLS: sessions, roles, anti-forgery, audited writes, queries, the live stream.</summary>
public sealed class AdminApiTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Uri Api(string path) => server.ConsoleUri(path);

    private HttpClient Client(CookieContainer? cookies = null) => server.ConsoleClient(cookies);

    private Task<HttpClient> SignedInAsync(string name, string role) => server.SignedInConsoleAsync(name, role);

    [Theory]
    [InlineData("/")]
    [InlineData("/console.js")]
    [InlineData("/api/openapi.json")]
    [InlineData("/api/decisions")] // refused: no session
    [InlineData("/metrics")]
    [InlineData("/no-such-page")]
    public async Task EveryConsoleResponse_CarriesTheContentSecurityPolicy(string path)
    {
        using var anonymous = Client();
        using var response = await anonymous.GetAsync(Api(path), TestContext.Current.CancellationToken);
        Assert.Equal(KtZeroTrust.SocConsole.Security.ConsoleSecurityHeaders.ContentSecurityPolicy, string.Join(";", response.Headers.GetValues("Content-Security-Policy")));
        Assert.Contains("frame-ancestors 'none'", KtZeroTrust.SocConsole.Security.ConsoleSecurityHeaders.ContentSecurityPolicy, StringComparison.Ordinal);
        Assert.Equal("nosniff", string.Join(",", response.Headers.GetValues("X-Content-Type-Options")));
        Assert.Equal("no-referrer", string.Join(",", response.Headers.GetValues("Referrer-Policy")));
    }

    [Fact]
    public async Task EveryCall_NeedsASession_WrongPasswordsAreRefusedAndAudited()
    {
        using var anonymous = Client();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(Api("/api/devices"), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(Api("/api/decisions/stream"), Ct)).StatusCode);
        using var wrong = await anonymous.PostAsJsonAsync(Api("/api/login"), new { user = "admin", password = "guess" }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        await server.DecisionAsync(d => d.Text("kind") == "admin" && d.Text("route") == "console:login" && d.Text("outcome") == "deny", "the failed sign-in");
        using var bad = await anonymous.PostAsync(Api("/api/login"), new StringContent("{not json", System.Text.Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var openapi = JsonDocument.Parse(await anonymous.GetStringAsync(Api("/api/openapi.json"), Ct)).RootElement;
        Assert.True(openapi.GetProperty("paths").TryGetProperty("/api/devices/{serial}/actions", out _));
        // The admin API answers on the console listener only: on the user listener the path is just an unrouted request,
        // judged identity first (this fixture has no identity provider, so that check fails closed).
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await anonymous.GetAsync(new Uri($"https://127.0.0.1:{server.UserPort}/api/devices"), Ct)).StatusCode);
    }

    [Fact]
    public async Task Actions_NeedTheAdminRoleAndAReason_AreAudited_AndTakeEffect()
    {
        using var admin = await SignedInAsync("api-admin", ConsoleRoles.Admin);
        using var analyst = await SignedInAsync("api-analyst", ConsoleRoles.Analyst);
        Assert.Equal(HttpStatusCode.Forbidden, (await analyst.PostAsJsonAsync(Api("/api/devices/FC-0005/actions"), new { action = "suspend", reason = "x" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PostAsJsonAsync(Api("/api/devices/FC-0005/actions"), new { action = "suspend" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PostAsJsonAsync(Api("/api/devices/FC-0005/actions"), new { action = "explode", reason = "x" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PostAsJsonAsync(Api("/api/devices/NOPE-1/actions"), new { action = "suspend", reason = "x" }, Ct)).StatusCode);

        using var suspended = await admin.PostAsJsonAsync(Api("/api/devices/FC-0005/actions"), new { action = "suspend", reason = "SOC ticket 4711" }, Ct);
        Assert.Equal(HttpStatusCode.OK, suspended.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsJsonAsync(Api("/api/devices/FC-0005/actions"), new { action = "suspend", reason = "again" }, Ct)).StatusCode);
        var detail = JsonDocument.Parse(await analyst.GetStringAsync(Api("/api/devices/FC-0005"), Ct)).RootElement;
        Assert.Equal("Suspended", detail.GetProperty("device").GetProperty("state").GetString());
        var last = detail.GetProperty("history").EnumerateArray().Last();
        Assert.Equal(("Suspended", "console:api-admin", "SOC ticket 4711"), (last.GetProperty("to").GetString(), last.GetProperty("actor").GetString(), last.GetProperty("reason").GetString()));
        await server.DecisionAsync(d => d.Text("kind") == "admin" && d.Text("route") == "admin:suspend" && d.Text("subject") == "FC-0005", "the audited suspension");

        var devices = JsonDocument.Parse(await analyst.GetStringAsync(Api("/api/devices?state=Suspended&q=FC-0005&pageSize=1"), Ct)).RootElement;
        Assert.Equal(("FC-0005", 1), (devices.GetProperty("items")[0].GetProperty("serial").GetString(), devices.GetProperty("pageSize").GetInt32()));
    }

    private async Task<(int Code, string Out, string Error)> ZtctlAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await KtZeroTrust.Cli.Commands.Ztctl.RunAsync([.. args, "--server", $"https://127.0.0.1:{server.ConsolePort}", "--pki-dir", server.Layout.Directory], output, error, Ct);
        return (code, output.ToString().Trim(), error.ToString());
    }

    [Fact]
    public async Task Ztctl_DoesWhatTheConsoleDoes_ThroughTheAdminApi()
    {
        var password = await server.Services.GetRequiredService<ConsoleUsers>().AddAsync("cli-admin", ConsoleRoles.Admin, TestContext.Current.CancellationToken);
        var once = await ZtctlAsync("console", "login", "--user", "cli-admin", "--password", password);
        Assert.Equal(4, once.Code); // a one-time password must be replaced
        Assert.Contains("one-time password", once.Error, StringComparison.Ordinal);
        var token = (await ZtctlAsync("console", "login", "--user", "cli-admin", "--password", password, "--new-password", "cli-admin-password")).Out;

        var suspended = await ZtctlAsync("device", "suspend", "FC-0004", "--reason", "from a script", "--token", token);
        Assert.True(suspended.Code == 0, suspended.Error);
        Assert.Equal("FC-0004 is now Suspended.", suspended.Out);
        Assert.Equal("console:cli-admin", (await server.OpenRegistry().GetHistoryAsync("FC-0004", Ct))[^1].Actor);

        await Eventually.Until(async () => (await ZtctlAsync("decisions", "search", "--device", "FC-0004", "--json", "--token", token)).Out, o => o.Contains("admin:suspend", StringComparison.Ordinal), "the audited suspension through ztctl");

        using var analyst = await SignedInAsync("cli-analyst", ConsoleRoles.Analyst);
        var analystToken = analyst.DefaultRequestHeaders.Authorization!.Parameter!;
        Assert.Equal(4, (await ZtctlAsync("device", "revoke", "FC-0004", "--reason", "not mine to do", "--token", analystToken)).Code);
        Assert.Equal(4, (await ZtctlAsync("device", "revoke", "FC-0004", "--reason", "no session")).Code);
        Assert.Equal(3, (await ZtctlAsync("device", "suspend", "NOPE-9", "--reason", "x", "--token", token)).Code);
    }

    [Fact]
    public async Task BrowserWrites_NeedTheAntiForgeryHeader()
    {
        var password = await server.Services.GetRequiredService<ConsoleUsers>().AddAsync("cookie-admin", ConsoleRoles.Admin, TestContext.Current.CancellationToken);
        var cookies = new CookieContainer();
        using var browser = Client(cookies);
        (await browser.PostAsJsonAsync(Api("/api/login"), new { user = "cookie-admin", password, newPassword = "cookie-admin-password" }, Ct)).EnsureSuccessStatusCode();
        using var me = await browser.GetAsync(Api("/api/me"), Ct);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode); // the cookie signs reads in
        var token = (await me.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("antiforgeryToken").GetString()!;
        using var forged = await browser.PostAsJsonAsync(Api("/api/devices/FC-0006/actions"), new { action = "suspend", reason = "forged by another site" }, Ct);
        Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
        using var guessed = new HttpRequestMessage(HttpMethod.Post, Api("/api/devices/FC-0006/actions")) { Content = JsonContent.Create(new { action = "suspend", reason = "a header without the token" }) };
        guessed.Headers.Add("X-ZT-Console", "1"); // the header alone is not enough: its value is the anti-forgery token
        Assert.Equal(HttpStatusCode.Forbidden, (await browser.SendAsync(guessed, Ct)).StatusCode);
        using var request = new HttpRequestMessage(HttpMethod.Post, Api("/api/devices/FC-0006/actions")) { Content = JsonContent.Create(new { action = "suspend", reason = "from the console" }) };
        request.Headers.Add("X-ZT-Console", token);
        Assert.Equal(HttpStatusCode.OK, (await browser.SendAsync(request, Ct)).StatusCode);
    }

    [Fact]
    public async Task DecisionsQueryAndLiveStream_ShowDeviceRequests()
    {
        using var analyst = await SignedInAsync("stream-analyst", ConsoleRoles.Analyst);
        using var stream = await analyst.GetStreamAsync(Api("/api/decisions/stream?device=FC-0001"), Ct);
        using var reader = new StreamReader(stream);
        Assert.Equal(": connected", await reader.ReadLineAsync(Ct));
        using var device = server.DeviceClient(server.SampleCertificate("FC-0001"));
        (await device.GetAsync(server.DeviceUri("/femto/status"), Ct)).EnsureSuccessStatusCode();
        string? line;
        do
        {
            line = await reader.ReadLineAsync(Ct);
        }
        while (line is not null && !line.StartsWith("data: ", StringComparison.Ordinal));

        var live = JsonDocument.Parse(line!["data: ".Length..]).RootElement;
        Assert.Equal(("FC-0001", "allow", "/femto/status"), (live.GetProperty("subject").GetString(), live.GetProperty("outcome").GetString(), live.GetProperty("path").GetString()));

        await Eventually.Until(async () => JsonDocument.Parse(await analyst.GetStringAsync(Api("/api/decisions?device=FC-0001&outcome=allow&limit=5"), Ct)).RootElement.GetArrayLength(), n => n > 0, "the decision in the query");
        var summary = JsonDocument.Parse(await analyst.GetStringAsync(Api("/api/summary"), Ct)).RootElement;
        Assert.Equal(60, summary.GetProperty("buckets").GetArrayLength());
    }
}
