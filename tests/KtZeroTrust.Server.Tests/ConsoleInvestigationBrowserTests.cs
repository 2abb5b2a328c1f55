using System.Net;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// An analyst works a clone alert in a real browser (Playwright driving Debian's chromium): the count in the
/// navigation, the case view with both source addresses, assign, note, acknowledge and revoke from the case (each
/// audited), the fleet map, the chart's ranges and a bar opened with the keyboard; every control labelled.
/// Screenshots to TestResults/screenshots.
/// </summary>
public sealed class ConsoleInvestigationBrowserTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string ConsoleUrl => $"https://localhost:{server.ConsolePort}/";

    [Fact]
    public async Task AnAnalyst_WorksACloneAlert_FromTheCaseView_AndReadsTheMapAndTheChart()
    {
        // One identity from two addresses: the clone detector raises a critical alert (and suspends the unit).
        foreach (var address in new[] { "127.0.0.1", "127.0.0.3" })
        {
            using var unit = server.DeviceClient(server.SampleCertificate("FC-0005"), localAddress: IPAddress.Parse(address));
            using var response = await unit.GetAsync(server.DeviceUri("/femto/status"), Ct);
        }

        var alert = await server.DecisionAsync(d => d.Text("kind") == "alert" && d.Text("reason") == "clone_suspected" && d.Text("subject") == "FC-0005", "the clone alert");
        var password = await server.Services.GetRequiredService<ConsoleUsers>().AddAsync("investigator", ConsoleRoles.Admin, Ct);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await ConsoleBrowser.LaunchAsync(playwright);
        var page = await ConsoleBrowser.SignInAsync(browser, ConsoleUrl, "investigator", password, "investigator-password-1");

        // The navigation counts open alerts.
        var badge = page.Locator("#alert-count");
        await badge.WaitForAsync();
        Assert.True(int.Parse(await badge.InnerTextAsync(), System.Globalization.CultureInfo.InvariantCulture) >= 1);
        Assert.Contains("open alerts", await badge.GetAttributeAsync("aria-label") ?? "", StringComparison.Ordinal);

        // From the list to the case.
        await page.GotoAsync($"{ConsoleUrl}#/alerts");
        var row = page.Locator("#alerts tbody tr", new PageLocatorOptions { HasText = "clone_suspected" }).First;
        await row.WaitForAsync();
        Assert.Contains("critical", await row.InnerTextAsync(), StringComparison.Ordinal);
        await row.Locator("a", new LocatorLocatorOptions { HasText = "Open case" }).ClickAsync();
        await page.Locator("#case-sources").WaitForAsync();
        var sources = await page.InnerTextAsync("#case-sources");
        Assert.Contains("127.0.0.1", sources, StringComparison.Ordinal);
        Assert.Contains("127.0.0.3", sources, StringComparison.Ordinal);
        Assert.True(await page.Locator("#case-timeline tbody tr").CountAsync() >= 2);
        Assert.Contains($"#/case/{alert.Text("id")}", page.Url, StringComparison.Ordinal); // a link another analyst can open
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ConsoleBrowser.Screenshots, "console-case.png"), FullPage = true });

        // Assign, note, acknowledge, revoke: each one a step of the case and an audited decision.
        await page.FillAsync("#case-assignee", "investigator");
        await page.ClickAsync("#case-assign button");
        await page.Locator("#case-message", new PageLocatorOptions { HasText = "Assigned to investigator" }).WaitForAsync();
        await page.FillAsync("#case-note", "two sources 30 km apart: cloned certificate");
        await page.ClickAsync("#case-note-form button");
        await page.Locator("#case-message", new PageLocatorOptions { HasText = "Note added" }).WaitForAsync();
        await page.ClickAsync("#case-ack");
        await page.Locator("#case-message", new PageLocatorOptions { HasText = "Acknowledged" }).WaitForAsync();
        await page.FillAsync("#case-reason", "cloned identity confirmed");
        await page.ClickAsync("#case-actions button[value=revoke]");
        await page.Locator("#case-message", new PageLocatorOptions { HasText = "revoke done" }).WaitForAsync();
        var steps = await page.InnerTextAsync("#case-steps");
        foreach (var step in new[] { "assign — investigator", "note — two sources", "ack", "revoke — cloned identity confirmed" })
        {
            Assert.Contains(step, steps, StringComparison.Ordinal);
        }

        Assert.Equal(KtZeroTrust.Core.Devices.DeviceLifecycleState.Revoked, (await server.OpenRegistry().FindAsync("FC-0005", Ct))!.State);
        foreach (var route in new[] { "admin:assign", "admin:note", "admin:ack", "admin:revoke" })
        {
            await server.DecisionAsync(d => d.Text("route") == route && d.Text("kind") == "admin", $"{route} audited");
        }

        // The map: the site, drawn from its coordinates on the bundled outline; Enter on it opens its decisions.
        await page.GotoAsync($"{ConsoleUrl}#/map");
        var site = page.Locator("#fleet-map g.site", new PageLocatorOptions { Has = page.Locator("title", new PageLocatorOptions { HasText = "test-site" }) });
        await site.WaitForAsync();
        Assert.Equal(2, await page.Locator("#fleet-map polygon.land").CountAsync()); // mainland and Jeju, no tiles fetched
        Assert.Contains("site-warn", await site.GetAttributeAsync("class") ?? "", StringComparison.Ordinal); // its alert acknowledged, a unit revoked
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ConsoleBrowser.Screenshots, "console-map.png") });
        await site.FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        await page.WaitForURLAsync("**/#/feed?site=test-site");
        await page.Locator("#feed tbody tr", new PageLocatorOptions { HasText = "FC-0005" }).First.WaitForAsync();

        // The chart: 60 one-minute bars for the hour, 48 for the day; a bar opened with the keyboard filters the feed.
        await page.GotoAsync($"{ConsoleUrl}#/feed");
        await page.Locator("#chart svg g.bar").First.WaitForAsync();
        Assert.Equal(60, await page.Locator("#chart svg g.bar").CountAsync());
        Assert.Contains("allowed", await page.InnerTextAsync("#chart-legend"), StringComparison.Ordinal);
        await page.SelectOptionAsync("#chart-range", "day");
        await page.Locator("#chart-title", new PageLocatorOptions { HasText = "30 min" }).WaitForAsync();
        Assert.Equal(48, await page.Locator("#chart svg g.bar").CountAsync());
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ConsoleBrowser.Screenshots, "console-chart.png") });
        await page.Locator("#chart svg g.bar[aria-label*='denied (']").Last.FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        await page.Locator("#f-since").WaitForAsync();
        Assert.NotEqual("", await page.InputValueAsync("#f-since"));
        Assert.Contains("format=csv", await page.GetAttributeAsync("#export-csv", "href") ?? "", StringComparison.Ordinal);
        Assert.Contains("since=", await page.GetAttributeAsync("#export-csv", "href") ?? "", StringComparison.Ordinal);

        // Accessibility: every form control of the views has a name a screen reader announces.
        foreach (var view in new[] { "#/feed", "#/alerts", $"#/case/{alert.Text("id")}", "#/map", "#/devices" })
        {
            await page.GotoAsync($"{ConsoleUrl}{view}");
            await page.Locator("#view > *").First.WaitForAsync();
            var unlabelled = await page.EvaluateAsync<string[]>(
                "() => [...document.querySelectorAll('#view input, #view select, #view textarea, #view button')].filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label') && !c.textContent.trim()).map(c => c.id || c.outerHTML.slice(0, 60))");
            Assert.Empty(unlabelled);
        }
    }
}
