using KtZeroTrust.Tests.Common;
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
