using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using KtZeroTrust.Cli.Commands;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.SocConsole.Auditing;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// The SOC console in a real browser (Playwright driving Debian's chromium): sign in, watch a rogue unit's denial
/// arrive live while the simulator runs, open a device, revoke it, see the next request denied and the revocation in
/// the feed; an analyst cannot revoke. Screenshots of the main views go to TestResults/screenshots.
/// </summary>
public sealed class ConsoleBrowserTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string ConsoleUrl => $"https://localhost:{server.ConsolePort}/";

    private static string Screenshots => ConsoleBrowser.Screenshots;

    private static Task<IBrowser> LaunchAsync(IPlaywright playwright) => ConsoleBrowser.LaunchAsync(playwright);

    private Task<IPage> SignInAsync(IBrowser browser, string user, string oneTimePassword, string newPassword)
        => ConsoleBrowser.SignInAsync(browser, ConsoleUrl, user, oneTimePassword, newPassword);

    private async Task<string> ApiTokenAsync(string user, string password)
    {
        using var client = ConsoleClient();
        using var response = await client.PostAsJsonAsync(new Uri($"{ConsoleUrl}api/login"), new { user, password }, Ct);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("token").GetString()!;
    }

    private HttpClient ConsoleClient() => new(new SocketsHttpHandler
    {
        SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => c is System.Security.Cryptography.X509Certificates.X509Certificate2 s && KtZeroTrust.Pki.Certificates.TrustPolicies.ChainsTo(s, server.TlsRoot) },
    });

    [Fact]
    public async Task Analyst_WatchesARogueDenialLive_AdministratorRevokesADevice_AndAnAnalystCannot()
    {
        var users = server.Services.GetRequiredService<ConsoleUsers>();
        Assert.Contains("\"admin\"", await File.ReadAllTextAsync(users.Location, Ct), StringComparison.Ordinal); // first start created the administrator
        var leadPassword = await users.AddAsync("soc-lead", ConsoleRoles.Admin, TestContext.Current.CancellationToken);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = await SignInAsync(browser, "soc-lead", leadPassword, "lead-password-2026");
        await page.Locator("#feed").WaitForAsync();

        // The simulator's rogue unit appears in the live feed while the simulator runs.
        var rogueRow = page.Locator("#feed tbody tr", new PageLocatorOptions { HasText = "device_unknown" });
        using var output = new StringWriter();
        using var error = new StringWriter();
        for (var round = 0; round < 10 && await rogueRow.CountAsync() == 0; round++)
        {
            await Ztctl.RunAsync(
            [
                "simulate", "--units", "1", "--rounds", "1",
                "--enroll-url", $"https://127.0.0.1:{server.EnrollmentPort}", "--gateway-url", $"https://127.0.0.1:{server.DevicePort}",
                "--rogue", "unknown-serial", "--data-dir", server.DataDirectory, "--pki-dir", server.Layout.Directory, "--json",
            ], output, error, Ct);
        }

        await rogueRow.First.WaitForAsync(new LocatorWaitForOptions { Timeout = 30_000 });
        Assert.Contains("UNREG-", await rogueRow.First.InnerTextAsync(), StringComparison.Ordinal);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, "console-feed.png") });

        await page.GotoAsync($"{ConsoleUrl}#/devices");
        await page.Locator("#devices tbody tr", new PageLocatorOptions { HasText = "FC-0002" }).WaitForAsync();
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, "console-devices.png") });

        // Open the device and revoke it, with a reason.
        await page.ClickAsync("#devices a:text-is('FC-0002')");
        await page.Locator("#timeline").WaitForAsync();
        await page.SelectOptionAsync("#action", "revoke");
        await page.FillAsync("#action-reason", "stolen unit reported by the owner");
        await page.ClickAsync("#action-submit");
        await page.Locator("#action-message", new PageLocatorOptions { HasText = "now Revoked" }).WaitForAsync();
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, "console-device.png") });

        // The next request from that unit is denied, and both the revocation and the denial show in the feed.
        await page.GotoAsync($"{ConsoleUrl}#/feed");
        await page.Locator("#feed").WaitForAsync();
        await page.Locator("#feed-status", new PageLocatorOptions { HasText = "live" }).WaitForAsync(new LocatorWaitForOptions { Timeout = 30_000 });
        using var device = server.DeviceClient(server.SampleCertificate("FC-0002"));
        await Eventually.Until(async () =>
        {
            using var response = await device.GetAsync(server.DeviceUri("/femto/status"), Ct);
            return response.StatusCode;
        }, s => s == HttpStatusCode.Forbidden, "FC-0002 to be refused");
        await page.Locator("#feed tbody tr", new PageLocatorOptions { HasText = "device_revoked" }).First.WaitForAsync(new LocatorWaitForOptions { Timeout = 30_000 });
        await page.Locator("#feed tbody tr", new PageLocatorOptions { HasText = "admin:revoke" }).First.WaitForAsync(new LocatorWaitForOptions { Timeout = 30_000 });

        // The revoked unit keeps knocking: the denial-burst detector raises an alert; an analyst acknowledges it.
        for (var i = 0; i < 25; i++)
        {
            using var response = await device.GetAsync(server.DeviceUri("/femto/status"), Ct);
        }

        await server.DecisionAsync(d => d.Text("kind") == "alert" && d.Text("reason") == "denial_burst", "the denial burst alert");
        await page.GotoAsync($"{ConsoleUrl}#/alerts");
        var alertRow = page.Locator("#alerts tbody tr", new PageLocatorOptions { HasText = "denial_burst" }).First;
        await alertRow.WaitForAsync();
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, "console-alerts.png") });
        await alertRow.Locator("button").ClickAsync();
        await alertRow.Locator("td", new LocatorLocatorOptions { HasText = "soc-lead" }).WaitForAsync();
        await page.ReloadAsync();
        await page.Locator("#alerts tbody tr", new PageLocatorOptions { HasText = "denial_burst" }).First.Locator("td", new LocatorLocatorOptions { HasText = "soc-lead" }).WaitForAsync(); // kept

        // An analyst reads but cannot act: the form is disabled, and the API refuses (and records the attempt).
        var token = await ApiTokenAsync("soc-lead", "lead-password-2026");
        using var api = ConsoleClient();
        api.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        using var added = await api.PostAsJsonAsync(new Uri($"{ConsoleUrl}api/users"), new { name = "analyst-1", role = ConsoleRoles.Analyst }, Ct);
        var analystPassword = (await added.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("oneTimePassword").GetString()!;
        var analystPage = await SignInAsync(browser, "analyst-1", analystPassword, "analyst-password-2026");
        await analystPage.GotoAsync($"{ConsoleUrl}#/devices/FC-0003");
        await analystPage.Locator("#timeline").WaitForAsync();
        Assert.True(await analystPage.Locator("#action-submit").IsDisabledAsync());

        using var analystApi = ConsoleClient();
        analystApi.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", await ApiTokenAsync("analyst-1", "analyst-password-2026"));
        using var refused = await analystApi.PostAsJsonAsync(new Uri($"{ConsoleUrl}api/devices/FC-0003/actions"), new { action = "revoke", reason = "trying" }, Ct);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(KtZeroTrust.Core.Devices.DeviceLifecycleState.Active, (await server.OpenRegistry().FindAsync("FC-0003", Ct))!.State);
        await server.DecisionAsync(d => d.Text("kind") == "admin" && d.Text("outcome") == "deny" && d.Text("subject") == "analyst-1", "the refused attempt, audited");
    }
}

/// <summary>What the browser tests share: Debian's chromium under Playwright, signing in with a one-time password, the screenshot folder.</summary>
internal static class ConsoleBrowser
{
    private static readonly string[] ChromiumArgs = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

    public static string Screenshots
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "KtZeroTrust.sln")))
            {
                dir = dir.Parent;
            }

            var path = Path.Combine(dir?.FullName ?? Path.GetTempPath(), "TestResults", "screenshots");
            Directory.CreateDirectory(path);
            return path;
        }
    }

    public static async Task<IBrowser> LaunchAsync(IPlaywright playwright)
        => await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = "/usr/bin/chromium", Headless = true, Args = ChromiumArgs });

    public static async Task<IPage> SignInAsync(IBrowser browser, string consoleUrl, string user, string oneTimePassword, string newPassword)
    {
        // The console's certificate chains to the development TLS root, which this throwaway browser profile does not hold.
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { IgnoreHTTPSErrors = true, ViewportSize = new ViewportSize { Width = 1366, Height = 860 } });
        var page = await context.NewPageAsync();
        var failed = new System.Collections.Concurrent.ConcurrentQueue<string>(); // what the network said, should a step fail
        page.RequestFailed += (_, request) => failed.Enqueue($"{request.Method} {request.Url}: {request.Failure}");
        await page.GotoAsync(consoleUrl);
        await page.FillAsync("#login-user", user);
        await page.FillAsync("#login-password", oneTimePassword);
        await page.ClickAsync("#login button[type=submit]");
        await page.Locator("#login-new-row").WaitForAsync(); // a one-time password must be replaced
        await page.FillAsync("#login-new", newPassword);
        await page.ClickAsync("#login button[type=submit]");
        try
        {
            await page.Locator("#nav").WaitForAsync(new LocatorWaitForOptions { Timeout = 15_000 });
        }
        catch (TimeoutException)
        {
            throw new InvalidOperationException($"sign-in failed: '{await page.InnerTextAsync("#login-error")}'; failed requests: {string.Join("; ", failed)}");
        }

        return page;
    }
}
