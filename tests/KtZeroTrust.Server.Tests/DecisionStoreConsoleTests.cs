using System.Net;
using System.Text.Json;
using KtZeroTrust.Monitoring.Store;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.DependencyInjection;

namespace KtZeroTrust.Server.Tests;

/// <summary>The embedded default stores decisions in SQLite; the console's queries, summaries and exports read them there.</summary>
public sealed class DecisionStoreConsoleTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<HttpClient> AnalystWithTrafficAsync(string name)
    {
        var analyst = await server.SignedInConsoleAsync(name, ConsoleRoles.Analyst);
        using var device = server.DeviceClient(server.SampleCertificate("FC-0002"));
        for (var i = 0; i < 3; i++)
        {
            (await device.GetAsync(server.DeviceUri("/femto/status"), Ct)).EnsureSuccessStatusCode();
        }

        await Eventually.Until(async () => (await server.Services.GetRequiredService<IDecisionStore>().QueryAsync(new DecisionFilter { Devices = ["FC-0002"] }, Ct)).Count, n => n >= 3, "FC-0002's decisions stored");
        return analyst;
    }

    private static async Task<JsonElement> JsonAsync(HttpClient client, string url)
        => JsonDocument.Parse(await client.GetStringAsync(url, Ct)).RootElement;

    [Fact]
    public async Task TheEmbeddedDefault_StoresDecisionsInSqlite_AndTheConsoleQueriesThem()
    {
        Assert.IsType<SqliteDecisionStore>(server.Services.GetRequiredService<IDecisionStore>());
        Assert.True(File.Exists(Path.Combine(server.DataDirectory, DecisionStoreOptions.DefaultFileName)));
        using var analyst = await AnalystWithTrafficAsync("store-analyst");

        var device = await JsonAsync(analyst, server.ConsoleUri("/api/decisions?device=FC-0002&outcome=allow").ToString());
        Assert.True(device.GetArrayLength() >= 3);
        Assert.All(device.EnumerateArray(), d => Assert.Equal(("FC-0002", "allow"), (d.Text("subject"), d.Text("outcome"))));

        // A site is its units (from the registry): every sample unit is in test-site, none in another.
        Assert.True((await JsonAsync(analyst, server.ConsoleUri("/api/decisions?site=test-site").ToString())).GetArrayLength() >= 3);
        Assert.Equal(0, (await JsonAsync(analyst, server.ConsoleUri("/api/decisions?site=no-such-site").ToString())).GetArrayLength());

        var page = await JsonAsync(analyst, server.ConsoleUri("/api/devices/FC-0002").ToString());
        Assert.True(page.GetProperty("decisions").GetArrayLength() >= 3);
    }

    [Theory]
    [InlineData("hour", 60, 60)]
    [InlineData("day", 1800, 48)] // 30-minute bars
    [InlineData("week", 10800, 56)] // 3-hour bars
    public async Task TheSummary_CoversTheChosenRange_InBars(string range, long bucketSeconds, int bars)
    {
        using var analyst = await AnalystWithTrafficAsync($"summary-{range}");
        var summary = await JsonAsync(analyst, server.ConsoleUri($"/api/summary?range={range}").ToString());
        Assert.True(summary.GetProperty("stored").GetBoolean());
        Assert.Equal(bucketSeconds, summary.GetProperty("bucketSeconds").GetInt64());
        var drawn = summary.GetProperty("buckets").EnumerateArray().ToList();
        Assert.Equal(bars, drawn.Count);
        Assert.True(drawn.Sum(b => b.GetProperty("allow").GetInt64()) >= 3);
    }

    [Fact]
    public async Task ACustomRange_IsChecked()
    {
        using var analyst = await server.SignedInConsoleAsync("summary-custom", ConsoleRoles.Analyst);
        var until = DateTimeOffset.UtcNow;
        var custom = await JsonAsync(analyst, server.ConsoleUri($"/api/summary?range=custom&since={Uri.EscapeDataString(until.AddHours(-6).ToString("O"))}&until={Uri.EscapeDataString(until.ToString("O"))}").ToString());
        Assert.Equal(300, custom.GetProperty("bucketSeconds").GetInt64()); // 6 hours in 5-minute bars
        foreach (var bad in new[] { "range=year", $"range=custom&since={Uri.EscapeDataString(until.ToString("O"))}&until={Uri.EscapeDataString(until.AddHours(-1).ToString("O"))}", "range=custom&since=yesterday" })
        {
            using var response = await analyst.GetAsync(server.ConsoleUri($"/api/summary?{bad}"), Ct);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
    }

    [Fact]
    public async Task AQuery_ExportsAsCsvAndOcsf_AndTheExportIsAudited()
    {
        using var analyst = await AnalystWithTrafficAsync("export-analyst");
        using var csv = await analyst.GetAsync(server.ConsoleUri("/api/decisions/export?format=csv&device=FC-0002"), Ct);
        csv.EnsureSuccessStatusCode();
        Assert.Equal("text/csv", csv.Content.Headers.ContentType?.MediaType);
        Assert.Contains("attachment", csv.Content.Headers.ContentDisposition?.ToString() ?? string.Join(",", csv.Content.Headers.GetValues("Content-Disposition")), StringComparison.Ordinal);
        var lines = (await csv.Content.ReadAsStringAsync(Ct)).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("time,id,kind,listener,subject,", lines[0], StringComparison.Ordinal);
        Assert.True(lines.Length >= 4);
        Assert.All(lines.Skip(1), l => Assert.Contains(",FC-0002,", l, StringComparison.Ordinal));

        using var ocsf = await analyst.GetAsync(server.ConsoleUri("/api/decisions/export?format=ocsf&device=FC-0002&limit=2"), Ct);
        var events = (await ocsf.Content.ReadAsStringAsync(Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal(4002, e.GetProperty("class_uid").GetInt32())); // HTTP Activity

        using var bad = await analyst.GetAsync(server.ConsoleUri("/api/decisions/export?format=xlsx"), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        await server.DecisionAsync(d => d.Text("route") == "admin:export" && d.Text("subject") == "export-analyst", "the export audited");
    }
}
