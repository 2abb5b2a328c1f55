using System.Net;
using System.Text.Json;
using KtZeroTrust.Attestation.Admission;
using KtZeroTrust.Cli.Commands;
using KtZeroTrust.SocConsole.Accounts;
using Microsoft.Playwright;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.DependencyInjection;

namespace KtZeroTrust.Server.Tests;

public sealed class AdmissionServerFixture() : ServerFixture(null, null,
    ["--ZeroTrust:Attestation:Admission:MaxInFlight=2", "--ZeroTrust:Attestation:Admission:RetryAfterSeconds=1"]);

/// <summary>Admission control on a node with room for 2 appraisals or enrollments at once, 1 per source prefix.</summary>
public sealed class AdmissionTests(AdmissionServerFixture server) : IClassFixture<AdmissionServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A body that is not CMS at all: refused only once admitted.</summary>
    private static ByteArrayContent Cms()
    {
        var content = new ByteArrayContent([1, 2, 3]);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/cms");
        return content;
    }

    [Fact]
    public async Task AFullCa_DefersWith202OrA429AndRetryAfter_AndTheDeferredUnitsEnrollAfterwards()
    {
        var admission = server.Services.GetRequiredService<EnrollmentAdmission>();
        using var client = server.DeviceClient(null);
        using (admission.TryEnter(IPAddress.Loopback)) // loopback's prefix is at its share: the next one from it waits
        {
            using var est = await client.PostAsync(server.EnrollmentUri("/.well-known/est/simpleenroll"), new StringContent("MIIB"), Ct);
            Assert.Equal(HttpStatusCode.Accepted, est.StatusCode); // RFC 7030 4.2.3
            Assert.InRange(est.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 1, 2);
            Assert.Equal("enrollment_deferred", JsonDocument.Parse(await est.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("reasonCode").GetString());

            using var unit = server.DeviceClient(server.SampleCertificate("FC-0002")); // evidence needs a unit's certificate first
            using var evidence = await unit.PostAsync(server.EnrollmentUri("/attest/evidence"), Cms(), Ct);
            Assert.Equal(HttpStatusCode.TooManyRequests, evidence.StatusCode);
            Assert.NotNull(evidence.Headers.RetryAfter);
        }

        await server.DecisionAsync(d => d.Text("reason") == "enrollment_deferred" && d.Text("route") == "est-simpleenroll" && d.Text("outcome") == "deny", "the deferral, recorded");
        Assert.Equal(0, admission.InFlight); // every lease given back

        // The scraper sees the node's capacity, what is in flight and how often it deferred.
        using var scraper = server.DeviceClient(null);
        scraper.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer",
            (await File.ReadAllTextAsync(Path.Combine(server.DataDirectory, "metrics-token"), Ct)).Trim());
        var metrics = await scraper.GetStringAsync(new Uri($"https://127.0.0.1:{server.ConsolePort}/metrics"), Ct);
        Assert.Contains("# TYPE ktzt_admission_capacity gauge\nktzt_admission_capacity 2\n", metrics, StringComparison.Ordinal);
        Assert.Contains("ktzt_admission_in_flight 0\n", metrics, StringComparison.Ordinal);
        Assert.Matches(@"ktzt_admission_deferred_total [1-9]\d*\n", metrics);

        // A storm of 5x the node's capacity (10 units at once on room for 2), half over EST and half over CMP, while an
        // enrolled unit keeps using the gateway: every storm unit is deferred as often as needed and enrolls in the end,
        // nothing fails with a server error, the CA never works on more than its capacity, the enrolled unit is never refused.
        using var enrolled = server.DeviceClient(server.SampleCertificate("FC-0001"));
        using var stormOver = new CancellationTokenSource();
        var gateway = Task.Run(async () =>
        {
            var (sent, ok) = (0, 0);
            while (!stormOver.IsCancellationRequested)
            {
                using var response = await enrolled.GetAsync(server.DeviceUri("/femto/status"), Ct);
                (sent, ok) = (sent + 1, ok + (response.StatusCode == HttpStatusCode.OK ? 1 : 0));
            }

            return (sent, ok);
        }, Ct);
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await Ztctl.RunAsync(
        [
            "simulate", "--units", "10", "--rounds", "1", "--concurrency", "10", "--protocol", "both",
            "--enroll-url", $"https://127.0.0.1:{server.EnrollmentPort}", "--gateway-url", $"https://127.0.0.1:{server.DevicePort}",
            "--data-dir", server.DataDirectory, "--pki-dir", server.Layout.Directory, "--json",
        ], output, error, Ct);
        await stormOver.CancelAsync();
        var (sent, allowed) = await gateway;

        Assert.True(code == 0, $"exit {code}: {output} {error}");
        var honest = JsonDocument.Parse(output.ToString()).RootElement.GetProperty("honest");
        Assert.Equal((10, 0, 10), (honest.GetProperty("enrolled").GetInt32(), honest.GetProperty("failed").GetInt32(), honest.GetProperty("gatewayOk").GetInt32()));
        var decisions = await server.DecisionsAsync();
        Assert.DoesNotContain(decisions, d => d.Text("reason") is "internal_error" or "dependency_unavailable");
        Assert.InRange(admission.PeakInFlight, 1, 2);
        Assert.Equal(0, admission.InFlight);
        Assert.True(sent > 0 && allowed == sent, $"the enrolled unit: {allowed} of {sent} requests allowed during the storm");
    }

    [Fact]
    public async Task ASiteAtItsShare_DefersItsOwnUnits_AndLeavesRoomForAnotherSitesUnits()
    {
        var admission = server.Services.GetRequiredService<EnrollmentAdmission>();
        using var unit = server.DeviceClient(server.SampleCertificate("FC-0003")); // the test fleet's units are all at "test-site"
        double DeferredBySite() => admission.Metrics.Single(m => m.Name == "ktzt_admission_deferred_site_total").Read();
        var before = DeferredBySite();

        // Another site's storm, from another prefix, holds that site's share (1 of 2): this site's unit is admitted
        // (and refused only for its evidence).
        using (var storm = admission.TryEnter(IPAddress.Parse("10.9.9.9"), "busan-haeundae-007"))
        {
            Assert.NotNull(storm);
            using var admitted = await unit.PostAsync(server.EnrollmentUri("/attest/evidence"), Cms(), Ct);
            var body = await admitted.Content.ReadAsStringAsync(Ct);
            Assert.True(admitted.StatusCode == HttpStatusCode.BadRequest, body);
            Assert.Equal("evidence_malformed", JsonDocument.Parse(body).RootElement.GetProperty("reasonCode").GetString());
        }

        // This site's own storm, from another prefix: its next unit waits even from a quiet prefix.
        using (var storm = admission.TryEnter(IPAddress.Parse("10.9.9.9"), "test-site"))
        {
            Assert.NotNull(storm);
            using var held = await unit.PostAsync(server.EnrollmentUri("/attest/evidence"), Cms(), Ct);
            var body = await held.Content.ReadAsStringAsync(Ct);
            var problem = JsonDocument.Parse(body).RootElement;
            Assert.True(held.StatusCode == HttpStatusCode.TooManyRequests, body);
            Assert.Equal("enrollment_deferred", problem.GetProperty("reasonCode").GetString());
            Assert.Contains("site holds its share", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.NotNull(held.Headers.RetryAfter);
        }

        Assert.Equal(before + 1, DeferredBySite());
        Assert.Equal(0, admission.InFlight);
        using var after = await unit.PostAsync(server.EnrollmentUri("/attest/evidence"), Cms(), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, after.StatusCode); // the share given back: admitted again
    }

    [Fact]
    public async Task TheCapacityPanel_ShowsDeferralsBySitePrefixAndNode_FromTheStoredDecisions_AndInTheBrowser()
    {
        var admission = server.Services.GetRequiredService<EnrollmentAdmission>();
        using var unit = server.DeviceClient(server.SampleCertificate("FC-0002"));
        using (admission.TryEnter(IPAddress.Loopback)) // the loopback prefix at its share: FC-0002's evidence waits
        {
            for (var i = 0; i < 3; i++)
            {
                using var answer = await unit.PostAsync(server.EnrollmentUri("/attest/evidence"), Cms(), Ct);
                Assert.Equal(HttpStatusCode.TooManyRequests, answer.StatusCode);
            }
        }

        using var analyst = await server.SignedInConsoleAsync("capacity-analyst", ConsoleRoles.Analyst);
        // The per-minute counts are the store's, written by the pipeline a moment later: wait for them, not for a time.
        var capacity = await Eventually.Until(async () => JsonDocument.Parse(await analyst.GetStringAsync(server.ConsoleUri("/api/capacity?range=hour"), Ct)).RootElement,
            c => c.GetProperty("buckets").EnumerateArray().Sum(b => b.GetProperty("deferred").GetInt64()) >= 3, "three deferrals counted");
        Assert.True(capacity.GetProperty("stored").GetBoolean());
        Assert.Equal(60, capacity.GetProperty("buckets").GetArrayLength());
        var deferred = capacity.GetProperty("deferred");
        Assert.Contains(deferred.GetProperty("bySite").EnumerateArray(), r => r.Text("key") == "test-site" && r.GetProperty("count").GetInt32() >= 3);
        Assert.Contains(deferred.GetProperty("byPrefix").EnumerateArray(), r => r.Text("key") == "127.0.0.0/24");
        Assert.NotEmpty(deferred.GetProperty("byNode").EnumerateArray());
        Assert.Equal(2, capacity.GetProperty("node").GetProperty("ktzt_admission_capacity").GetDouble()); // this process's own gauges
        Assert.True(capacity.GetProperty("node").TryGetProperty("ktzt_device_handshakes_capacity", out _));
        using (var bad = await analyst.GetAsync(server.ConsoleUri("/api/capacity?range=year"), Ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        }

        // The same in the console: the chart, the site that waited (a link to its deferrals), this node's gauges.
        var password = await server.Services.GetRequiredService<ConsoleUsers>().AddAsync("capacity-viewer", ConsoleRoles.Analyst, Ct);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await ConsoleBrowser.LaunchAsync(playwright);
        var page = await ConsoleBrowser.SignInAsync(browser, $"https://localhost:{server.ConsolePort}/", "capacity-viewer", password, "capacity-viewer-password-1");
        await page.ClickAsync("#nav a[data-view=capacity]");
        await page.Locator("#capacity-chart, #view .error").First.WaitForAsync();
        Assert.True(await page.Locator("#capacity-chart").CountAsync() == 1, await page.InnerTextAsync("#view"));
        Assert.Equal(60, await page.Locator("#capacity-chart g.bar").CountAsync());
        Assert.Contains("deferred", await page.InnerTextAsync("#capacity-totals"), StringComparison.Ordinal);
        var site = page.Locator("#capacity-sites a", new PageLocatorOptions { HasText = "test-site" });
        Assert.Equal("#/feed?site=test-site&reason=enrollment_deferred", await site.GetAttributeAsync("href"));
        Assert.Contains("ktzt_admission_capacity", await page.InnerTextAsync("#capacity-node"), StringComparison.Ordinal);
        await page.SelectOptionAsync("#capacity-range", "day");
        await page.WaitForURLAsync("**/#/capacity?range=day");
        await page.Locator("#capacity-chart").WaitForAsync();
        Assert.Equal(48, await page.Locator("#capacity-chart g.bar").CountAsync());
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ConsoleBrowser.Screenshots, "console-capacity.png"), FullPage = true });
    }

    [Fact]
    public async Task AFullCa_AnswersACmpIrWithWaiting_AndOpensslPollsUntilTheCertificateIsServed()
    {
        const string serial = "FC-0003";
        var admission = server.Services.GetRequiredService<EnrollmentAdmission>();
        var cmp = new CmpClient(server);
        await cmp.AttestAsync(serial, Ct);
        var (key, certificate) = (await cmp.NewKeyAsync("polled.key"), cmp.Scratch("polled.pem"));
        Task<(int Exit, string Output)> ir;
        using (admission.TryEnter(IPAddress.Loopback)) // the loopback prefix is at its share while this is held
        {
            ir = cmp.IrAsync(serial, key, certificate);
            await server.DecisionAsync(d => d.Text("subject") == serial && d.Text("route") == "cmp:ir" && d.Text("reason") == "enrollment_deferred", "the ir, held with status waiting");
            await server.DecisionAsync(d => d.Text("subject") == serial && d.Text("route") == "cmp:pollReq" && d.Text("reason") == "enrollment_deferred", "a poll answered with pollRep");
            Assert.False(File.Exists(certificate));
        }

        var (exit, output) = await ir;
        Assert.True(exit == 0, output);
        Assert.Contains("POLLREP", output, StringComparison.Ordinal);
        Assert.Contains("sending CERTCONF", output, StringComparison.Ordinal);
        using (var issued = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(certificate, key))
        {
            Assert.Equal(serial, KtZeroTrust.Pki.Certificates.DeviceCertificates.SerialOf(issued));
            using var device = server.DeviceClient(issued);
            await Eventually.Until(() => device.GetAsync(server.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.OK, "the unit served after polling, admitted");
        }

        var cmpDecisions = (await server.DecisionsAsync()).Where(d => d.Text("subject") == serial && d.Text("route") is { } r && r.StartsWith("cmp:", StringComparison.Ordinal))
            .Select(d => $"{d.Text("route")} {d.Text("reason")}").ToList();
        Assert.Equal("cmp:ir enrollment_deferred", cmpDecisions[0]);
        Assert.Equal(["cmp:ir allowed", "cmp:certConf allowed"], cmpDecisions.TakeLast(2)); // served from a poll, then confirmed
        Assert.All(cmpDecisions.Skip(1).SkipLast(2), d => Assert.Equal("cmp:pollReq enrollment_deferred", d));
        Assert.Equal(0, admission.InFlight);
    }

    [Fact]
    public async Task AFullCa_HoldsOneRequestPerSigner_ANewerIrReplacesTheHeldOne_AndOnlyItIsServed()
    {
        const string serial = "FC-0004";
        var admission = server.Services.GetRequiredService<EnrollmentAdmission>();
        var cmp = new CmpClient(server);
        await cmp.AttestAsync(serial, Ct);
        var (firstKey, firstCertificate) = (await cmp.NewKeyAsync("first.key"), cmp.Scratch("first.pem"));
        var (secondKey, secondCertificate) = (await cmp.NewKeyAsync("second.key"), cmp.Scratch("second.pem"));
        int HeldIrs(IEnumerable<JsonElement> decisions) => decisions.Count(d => d.Text("subject") == serial && d.Text("route") == "cmp:ir" && d.Text("reason") == "enrollment_deferred");
        Task<(int Exit, string Output)> second;
        using (admission.TryEnter(IPAddress.Loopback)) // the loopback prefix at its share: both requests are held
        {
            var first = cmp.IrAsync(serial, firstKey, firstCertificate);
            await server.DecisionAsync(d => d.Text("subject") == serial && d.Text("route") == "cmp:ir" && d.Text("reason") == "enrollment_deferred", "the first ir, held");
            second = cmp.IrAsync(serial, secondKey, secondCertificate); // the same IDevID, a new transaction
            await Eventually.Until(async () => HeldIrs(await server.DecisionsAsync()), n => n == 2, "the second ir, held in the first's place");

            // The first unit's next poll finds nothing of its transaction held: refused, and it gives up.
            var (exit, output) = await first;
            Assert.True(exit != 0, output);
            await server.DecisionAsync(d => d.Text("subject") == serial && d.Text("route") == "cmp:pollReq" && d.Text("reason") == "request_malformed", "the replaced request's poll, refused");
            Assert.False(File.Exists(firstCertificate));
        }

        var (secondExit, secondOutput) = await second;
        Assert.True(secondExit == 0, secondOutput);
        using (var issued = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(secondCertificate, secondKey))
        {
            Assert.Equal(serial, KtZeroTrust.Pki.Certificates.DeviceCertificates.SerialOf(issued));
        }

        var served = (await server.DecisionsAsync()).Where(d => d.Text("subject") == serial && d.Text("route") == "cmp:ir" && d.Text("reason") == "allowed").ToList();
        Assert.Single(served); // one certificate for the two requests: the held one was replaced, not kept beside it
        Assert.False(File.Exists(firstCertificate));
        Assert.Equal(0, admission.InFlight);
    }
}
