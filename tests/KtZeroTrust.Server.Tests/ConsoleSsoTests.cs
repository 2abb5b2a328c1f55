using KtZeroTrust.Tests.Common;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace KtZeroTrust.Server.Tests;

/// <summary>A server whose console signs people in with the test OIDC provider (authorization code + PKCE).</summary>
public sealed class ConsoleSsoFixture : OidcServerFixture
{
    public ConsoleSsoFixture()
        : this(FreePorts.Next(5))
    {
    }

    private ConsoleSsoFixture(int[] ports)
        : this(ports, OidcProvider.Create("https://gateway.ktzerotrust.test", $"https://localhost:{ports[3]}/api/oidc/callback"))
    {
    }

    private ConsoleSsoFixture(int[] ports, OidcProvider provider)
        : base(provider,
        [
            $"--ZeroTrust:Console:Oidc:Authority={provider.Issuer}", "--ZeroTrust:Console:Oidc:ClientId=ktzt-console",
            "--ZeroTrust:Console:Oidc:ClientSecret=ktzt-console-secret", "--ZeroTrust:Console:Oidc:RequireHttpsMetadata=false",
        ])
        => Ports = ports;
}

public sealed class ConsoleSsoTests(ConsoleSsoFixture server) : IClassFixture<ConsoleSsoFixture>
{
    private static readonly string[] ChromiumArgs = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

    private async Task<IPage> SignInWithProviderAsync(IBrowser browser, string login)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { IgnoreHTTPSErrors = true });
        var page = await context.NewPageAsync();
        await page.GotoAsync($"https://localhost:{server.ConsolePort}/");
        await page.Locator("#sso").ClickAsync();
        // The provider's own (development) login page, then its consent page.
        await page.FillAsync("input[name=login]", login);
        await page.FillAsync("input[name=password]", "any");
        await page.ClickAsync("button[type=submit]");
        await page.ClickAsync("button[type=submit]");
        return page;
    }

    [Fact]
    public async Task ProviderSignIn_GivesTheRoleFromTheRolesClaim_AndRefusesAUserWithoutOne()
    {
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = "/usr/bin/chromium", Headless = true, Args = ChromiumArgs });

        var admin = await SignInWithProviderAsync(browser, "sso-admin");
        await admin.Locator("#who", new PageLocatorOptions { HasText = "sso-admin (soc-admin)" }).WaitForAsync();
        await admin.Locator("#feed").WaitForAsync();

        var analyst = await SignInWithProviderAsync(browser, "sso-analyst");
        await analyst.Locator("#who", new PageLocatorOptions { HasText = "sso-analyst (soc-analyst)" }).WaitForAsync();

        var nobody = await SignInWithProviderAsync(browser, "mallory");
        await nobody.Locator("#login-error", new PageLocatorOptions { HasText = "neither soc-admin nor soc-analyst" }).WaitForAsync();
        Assert.True(await nobody.Locator("#nav").IsHiddenAsync());
        await server.DecisionAsync(d => d.Text("kind") == "admin" && d.Text("route") == "console:login" && d.Text("outcome") == "deny", "the refused provider sign-in");
    }
}

/// <summary>The console's OpenID Connect handler seen from outside, without a browser: what it sends and what it refuses.</summary>
public sealed class ConsoleSsoProtocolTests(ConsoleSsoFixture server) : IClassFixture<ConsoleSsoFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private HttpClient Client(System.Net.CookieContainer cookies) => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        CookieContainer = cookies,
        SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true }, // the console's identity is not what is under test here
    });

    [Fact]
    public async Task Login_PushesTheRequestToTheProvider_AndKeepsCorrelationAndNonceInProtectedCookies()
    {
        using var client = Client(new System.Net.CookieContainer());
        // The host the provider has registered in the client's redirect URI (it checks the pushed request's).
        using var response = await client.GetAsync(new Uri($"https://localhost:{server.ConsolePort}/api/oidc/login"), Ct);
        Assert.Equal(System.Net.HttpStatusCode.Redirect, response.StatusCode);
        var location = response.Headers.Location!;
        Assert.StartsWith(server.Provider.Issuer, location.ToString(), StringComparison.Ordinal);
        // Pushed authorization request (RFC 9126, the provider offers it): code, PKCE challenge, state and nonce went
        // to the provider server to server; the browser carries only a reference to them.
        var query = System.Web.HttpUtility.ParseQueryString(location.Query);
        Assert.Equal("ktzt-console", query["client_id"]);
        Assert.StartsWith("urn:ietf:params:oauth:request_uri:", query["request_uri"], StringComparison.Ordinal);
        Assert.Null(query["code_challenge"]);
        var cookies = response.Headers.GetValues("Set-Cookie").ToList();
        Assert.Contains(cookies, c => c.StartsWith(".AspNetCore.Correlation.", StringComparison.Ordinal) && c.Contains("secure", StringComparison.OrdinalIgnoreCase) && c.Contains("httponly", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(cookies, c => c.StartsWith(".AspNetCore.OpenIdConnect.Nonce.", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("state=forged&code=stolen")]
    [InlineData("code=stolen")]
    public async Task Callback_WithAStateTheConsoleDidNotProtect_IsRefused_AndRecorded(string form)
    {
        using var client = Client(new System.Net.CookieContainer());
        using var response = await client.PostAsync(server.ConsoleUri("/api/oidc/callback"), new StringContent(form, System.Text.Encoding.ASCII, "application/x-www-form-urlencoded"), Ct);
        Assert.Equal(System.Net.HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith("/#/login?error=", response.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Empty(response.Headers.TryGetValues("Set-Cookie", out var set) ? set.Where(c => c.StartsWith("zt_console=", StringComparison.Ordinal) && !c.StartsWith("zt_console=;", StringComparison.Ordinal)) : []);
        await server.DecisionAsync(d => d.Text("kind") == "admin" && d.Text("route") == "console:login" && d.Text("outcome") == "deny" && (d.Text("detail") ?? "").Contains("identity provider sign-in refused", StringComparison.Ordinal), "the refused callback");
    }

    [Fact]
    public async Task SignOut_EndsTheConsoleSession_AndSendsTheBrowserToTheProvidersEndSession()
    {
        using var client = Client(new System.Net.CookieContainer());
        var password = await server.Services.GetRequiredService<KtZeroTrust.SocConsole.Accounts.ConsoleUsers>().AddAsync("sso-signout", "soc-analyst", TestContext.Current.CancellationToken);
        (await client.PostAsJsonAsync(server.ConsoleUri("/api/login"), new { user = "sso-signout", password, newPassword = "sso-signout-password" }, Ct)).EnsureSuccessStatusCode();
        Assert.Equal(System.Net.HttpStatusCode.OK, (await client.GetAsync(server.ConsoleUri("/api/me"), Ct)).StatusCode);

        using var signOut = await client.GetAsync(server.ConsoleUri("/api/oidc/logout"), Ct);
        Assert.Equal(System.Net.HttpStatusCode.Redirect, signOut.StatusCode);
        Assert.StartsWith($"{server.Provider.Issuer}/session/end", signOut.Headers.Location!.ToString(), StringComparison.Ordinal);
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await client.GetAsync(server.ConsoleUri("/api/me"), Ct)).StatusCode);
    }
}
