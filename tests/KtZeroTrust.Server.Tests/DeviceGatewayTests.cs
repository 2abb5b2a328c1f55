using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

public sealed class DeviceGatewayTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Request_WithEnrolledDevice_ReachesUpstreamWithDeviceIdentity()
    {
        using var client = server.DeviceClient(server.SampleCertificate("FC-0001"));

        using var response = await client.GetAsync(server.DeviceUri("/femto/status"), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("FC-0001", body.GetProperty("deviceId").GetString());
        Assert.Equal("/femto/status", body.GetProperty("path").GetString());
        var decisionId = body.GetProperty("decisionId").GetString()!;
        Assert.Equal(26, decisionId.Length);

        var decision = await server.DecisionAsync(d => d.GetProperty("id").GetString() == decisionId, "the allow decision");
        Assert.Equal("allow", decision.GetProperty("outcome").GetString());
        Assert.Equal("allowed", decision.GetProperty("reason").GetString());
        Assert.Equal("FC-0001", decision.GetProperty("subject").GetString());
        Assert.Equal("femto-management", decision.GetProperty("route").GetString());
        Assert.Equal("127.0.0.1", decision.GetProperty("sourceAddress").GetString());
        Assert.Equal(CertificateHash.Of(server.SampleCertificate("FC-0001")).ToString(), decision.GetProperty("certificateSha256").GetString());
    }

    [Fact]
    public async Task Request_OverHttp2_ReachesUpstream()
    {
        using var client = server.DeviceClient(server.SampleCertificate("FC-0001"), HttpVersion.Version20);

        using var response = await client.GetAsync(server.DeviceUri("/femto/config"), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version20, response.Version);
    }

    [Fact]
    public async Task Request_WithSpoofedIdentityHeaders_UpstreamSeesOnlyTheGatewaysIdentity()
    {
        using var client = server.DeviceClient(server.SampleCertificate("FC-0001"));
        using var request = new HttpRequestMessage(HttpMethod.Get, server.DeviceUri("/femto/status"));
        request.Headers.TryAddWithoutValidation("X-ZT-Device-Id", "FC-9999");
        request.Headers.TryAddWithoutValidation("x-zt-decision-id", "forged");
        request.Headers.TryAddWithoutValidation("X-ZT-Role", "admin");
        request.Headers.TryAddWithoutValidation("X-Forwarded-Client-Cert", "Hash=forged;Subject=\"CN=FC-9999\"");

        using var response = await client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("FC-0001", body.GetProperty("deviceId").GetString());
        var identity = body.GetProperty("identityHeaders").EnumerateObject().ToDictionary(p => p.Name.ToUpperInvariant(), p => p.Value.GetString());
        Assert.Equal(["X-ZT-DECISION-ID", "X-ZT-DEVICE-ID"], identity.Keys.Order().ToArray());
        Assert.Equal("FC-0001", identity["X-ZT-DEVICE-ID"]);
        Assert.NotEqual("forged", identity["X-ZT-DECISION-ID"]);
    }

    [Fact]
    public async Task Request_WithIdentityHeadersSpelledWithUnderscores_OrAForgedHost_UpstreamSeesNoneOfThem()
    {
        using var client = server.DeviceClient(server.SampleCertificate("FC-0001"));
        using var request = new HttpRequestMessage(HttpMethod.Get, server.DeviceUri("/femto/status"));
        foreach (var name in new[] { "X_ZT_User", "x_zt_device_id", "X-ZT_Decision-Id", "X_Forwarded_Client_Cert", "x-zt-roles", "X_Forwarded_Host", "X_Forwarded_For" })
        {
            request.Headers.TryAddWithoutValidation(name, "forged");
        }

        request.Headers.Host = "evil.example";

        using var response = await client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var identity = body.GetProperty("identityHeaders").EnumerateObject().ToDictionary(p => p.Name.ToUpperInvariant(), p => p.Value.GetString());
        Assert.Equal(["X-ZT-DECISION-ID", "X-ZT-DEVICE-ID"], identity.Keys.Order().ToArray());
        Assert.Equal("FC-0001", identity["X-ZT-DEVICE-ID"]);
        var forwarded = body.GetProperty("forwardedHeaders").EnumerateObject().ToDictionary(p => p.Name.ToUpperInvariant(), p => p.Value.GetString());
        Assert.DoesNotContain("X-FORWARDED-HOST", forwarded.Keys); // the route names no host: none is sent, never the client's
        Assert.DoesNotContain(forwarded.Values, v => v!.Contains("forged", StringComparison.Ordinal) || v.Contains("evil", StringComparison.Ordinal));
        Assert.Equal("127.0.0.1", forwarded["X-FORWARDED-FOR"]);
    }

    public enum Presented
    {
        None,
        OtherCa,
        LookAlikeCaSameName,
        SelfSignedLookAlike,
        Expired,
        NotYetValid,
        LifetimeBeyondPolicy,
        ServerAuthOnly,
        FactoryIdentity,
    }

    [Theory]
    [InlineData(Presented.None, "certificate_missing")]
    [InlineData(Presented.OtherCa, "certificate_untrusted")]
    [InlineData(Presented.LookAlikeCaSameName, "certificate_untrusted")]
    [InlineData(Presented.SelfSignedLookAlike, "certificate_untrusted")]
    [InlineData(Presented.Expired, "certificate_expired")]
    [InlineData(Presented.NotYetValid, "certificate_not_yet_valid")]
    [InlineData(Presented.LifetimeBeyondPolicy, "certificate_policy_violation")]
    [InlineData(Presented.ServerAuthOnly, "certificate_untrusted")]
    [InlineData(Presented.FactoryIdentity, "certificate_untrusted")]
    public async Task Handshake_WithCertificateNotFromOperatorPolicy_IsRefusedAndRecorded(Presented presented, string reason)
    {
        var certificate = Make(presented);
        using var client = server.DeviceClient(certificate);

        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetAsync(server.DeviceUri("/femto/status"), Ct));

        var hash = certificate is null ? null : CertificateHash.Of(certificate).ToString();
        var decision = await server.DecisionAsync(d =>
            // Decisions without a route (e.g. a refused path) omit the field, so it is read as optional.
            d.TryGetProperty("route", out var route) && route.GetString() == "tls-handshake"
            && d.GetProperty("reason").GetString() == reason
            && (hash is null || (d.TryGetProperty("certificateSha256", out var h) && h.GetString() == hash)), $"a {reason} handshake decision");
        Assert.Equal("deny", decision.GetProperty("outcome").GetString());
    }

    private X509Certificate2? Make(Presented presented)
    {
        var now = DateTimeOffset.UtcNow;
        using var operatorCa = server.OperatorCa();
        switch (presented)
        {
            case Presented.None:
                return null;
            case Presented.OtherCa:
                using (var other = TestCertificates.CreateCa("CN=Some Other CA, O=Elsewhere"))
                {
                    return TestCertificates.Device(other, "FC-0001");
                }

            case Presented.LookAlikeCaSameName:
                using (var lookAlike = TestCertificates.CreateCa(operatorCa.Certificate.Subject))
                {
                    return TestCertificates.Device(lookAlike, "FC-0001");
                }

            case Presented.SelfSignedLookAlike:
                return TestCertificates.SelfSignedLookAlike(server.SampleCertificate("FC-0001"));
            case Presented.Expired:
                return TestCertificates.Device(operatorCa, "FC-0001", now.AddDays(-10), now.AddDays(-1));
            case Presented.NotYetValid:
                return TestCertificates.Device(operatorCa, "FC-0001", now.AddDays(1), now.AddDays(2));
            case Presented.LifetimeBeyondPolicy:
                return TestCertificates.Device(operatorCa, "FC-0001", now.AddMinutes(-5), now.AddDays(365));
            case Presented.ServerAuthOnly:
                return TestCertificates.Device(operatorCa, "FC-0001", usage: CertificateUsage.ServerAuth);
            case Presented.FactoryIdentity:
                return PemFiles.ReadCertificateWithKey(server.Layout.IDevIdCertificate("FC-0001"), server.Layout.IDevIdKey("FC-0001"));
            default:
                throw new ArgumentOutOfRangeException(nameof(presented));
        }
    }

    [Fact]
    public async Task Request_WithOperatorCertificateNotOnAllowList_IsDeniedAsUnknown()
    {
        using var operatorCa = server.OperatorCa();
        using var client = server.DeviceClient(TestCertificates.Device(operatorCa, "FC-0001"));

        using var response = await client.GetAsync(server.DeviceUri("/femto/status"), Ct);

        await AssertProblemAsync(response, HttpStatusCode.Forbidden, "device_unknown");
    }

    [Fact]
    public async Task Request_WithRevokedDevice_IsDeniedWithReasonAndRecorded()
    {
        using var client = server.DeviceClient(server.SampleCertificate("FC-0002"));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(server.DeviceUri("/femto/status"), Ct)).StatusCode);

        await server.TransitionAsync("FC-0002", DeviceLifecycleState.Revoked, "reported stolen");

        using var fresh = server.DeviceClient(server.SampleCertificate("FC-0002"));
        var response = await Eventually.Until(() => fresh.GetAsync(server.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.Forbidden, "the revoked device to be denied");
        var problem = await AssertProblemAsync(response, HttpStatusCode.Forbidden, "device_revoked");
        var decisionId = problem.GetProperty("decisionId").GetString();
        var decision = await server.DecisionAsync(d => d.GetProperty("id").GetString() == decisionId, "the revocation denial");
        Assert.Equal("deny", decision.GetProperty("outcome").GetString());
        Assert.Equal("device_revoked", decision.GetProperty("reason").GetString());
        Assert.Equal("FC-0002", decision.GetProperty("subject").GetString());
    }

    [Fact]
    public async Task Request_WithSuspendedDevice_IsDeniedUntilResumed()
    {
        using var client = server.DeviceClient(server.SampleCertificate("FC-0003"));
        await server.TransitionAsync("FC-0003", DeviceLifecycleState.Suspended, "idle for 90 days");

        var denied = await Eventually.Until(() => client.GetAsync(server.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.Forbidden, "the suspended device to be denied");
        await AssertProblemAsync(denied, HttpStatusCode.Forbidden, "device_suspended");

        await server.TransitionAsync("FC-0003", DeviceLifecycleState.Active, "owner confirmed the unit");
        var allowed = await Eventually.Until(() => client.GetAsync(server.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.OK, "the resumed device to pass");
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }

    [Fact]
    public async Task Suspension_AbortsTheOpenHttp11KeepAliveConnection_AndRecordsWhy()
    {
        await using var connection = await RawHttp1Connection.OpenAsync(server.DevicePort, server.SampleCertificate("FC-0004"), server.TlsRoot, Ct);
        Assert.Equal(200, (await connection.GetAsync("/femto/status", Ct)).Status);
        Assert.Equal(200, (await connection.GetAsync("/femto/status", Ct)).Status); // kept alive

        await server.TransitionAsync("FC-0004", DeviceLifecycleState.Suspended, "clone suspected");

        Assert.True(await connection.ClosedByServerAsync(TimeSpan.FromSeconds(20), Ct), "the gateway must close the suspended device's open connection");
        var abort = await server.DecisionAsync(d => d.Text("route") == "connection-abort" && d.Text("subject") == "FC-0004", "the abort decision");
        Assert.Equal("device_suspended", abort.GetProperty("reason").GetString());
        Assert.Equal(connection.LocalPort, abort.GetProperty("sourcePort").GetInt32());

        using var client = server.DeviceClient(server.SampleCertificate("FC-0004"));
        await AssertProblemAsync(await client.GetAsync(server.DeviceUri("/femto/status"), Ct), HttpStatusCode.Forbidden, "device_suspended");
    }

    [Fact]
    public async Task Revocation_AbortsTheOpenHttp2Connection()
    {
        using var client = server.DeviceClient(server.SampleCertificate("FC-0005"), HttpVersion.Version20);
        using var first = await client.GetAsync(server.DeviceUri("/femto/status"), Ct);
        Assert.Equal((HttpStatusCode.OK, HttpVersion.Version20), (first.StatusCode, first.Version));
        var body = await first.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var allowed = await server.DecisionAsync(d => d.GetProperty("id").GetString() == body.GetProperty("decisionId").GetString(), "the allow decision");
        var port = allowed.GetProperty("sourcePort").GetInt32();

        await server.TransitionAsync("FC-0005", DeviceLifecycleState.Revoked, "stolen from the customer's premises");

        var abort = await server.DecisionAsync(d => d.Text("route") == "connection-abort" && d.Text("subject") == "FC-0005", "the abort decision");
        Assert.Equal(("device_revoked", port), (abort.GetProperty("reason").GetString(), abort.GetProperty("sourcePort").GetInt32()));
        // The next request finds the connection gone (or, racing the close, is cut) and is denied on a new one.
        var denied = await Eventually.Until(() => client.GetAsync(server.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.Forbidden, "the next request to be denied");
        await AssertProblemAsync(denied, HttpStatusCode.Forbidden, "device_revoked");
    }

    [Fact]
    public async Task SameIdentityFromASecondAddress_IsRefusedAsAClone_AlertedAndSuspended()
    {
        using var here = server.DeviceClient(server.SampleCertificate("FC-0006"));
        using var elsewhere = server.DeviceClient(server.SampleCertificate("FC-0006"), localAddress: IPAddress.Parse("127.0.0.2"));
        Assert.Equal(HttpStatusCode.OK, (await here.GetAsync(server.DeviceUri("/femto/status"), Ct)).StatusCode);

        var problem = await AssertProblemAsync(await elsewhere.GetAsync(server.DeviceUri("/femto/status"), Ct), HttpStatusCode.Forbidden, "clone_suspected");

        var alert = await server.DecisionAsync(d => d.Text("kind") == "alert" && d.Text("subject") == "FC-0006", "the clone alert");
        Assert.Equal(("detector:clone", "clone_suspected", "127.0.0.2"), (alert.Text("route"), alert.Text("reason"), alert.Text("sourceAddress")));
        Assert.NotNull(problem.GetProperty("decisionId").GetString());
        var cut = await Eventually.Until(() => here.GetAsync(server.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.Forbidden, "the original too to be cut off");
        await AssertProblemAsync(cut, HttpStatusCode.Forbidden, "device_suspended");
        Assert.Equal("detector:clone", (await server.OpenRegistry().GetHistoryAsync("FC-0006", Ct))[^1].Actor);
    }

    [Fact]
    public async Task Request_ToPathNoRouteServes_IsDeniedAndRecorded()
    {
        using var client = server.DeviceClient(server.SampleCertificate("FC-0001"));

        using var response = await client.GetAsync(server.DeviceUri("/admin/secrets"), Ct);

        var problem = await AssertProblemAsync(response, HttpStatusCode.NotFound, "route_not_allowed");
        var decisionId = problem.GetProperty("decisionId").GetString();
        await server.DecisionAsync(d => d.GetProperty("id").GetString() == decisionId, "the unrouted request's decision");
    }

    [Fact]
    public async Task DeviceRoute_OnConsoleListener_IsNotServed()
    {
        using var client = server.DeviceClient(null);

        using var health = await client.GetAsync(new Uri($"https://127.0.0.1:{server.ConsolePort}/healthz"), Ct);
        using var proxied = await client.GetAsync(new Uri($"https://127.0.0.1:{server.ConsolePort}/femto/status"), Ct);

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, proxied.StatusCode);
    }

    [Theory]
    [InlineData("/femto/%2e%2e/admin")]
    [InlineData("/femto/..%2fadmin")]
    [InlineData("/femto/%252e%252e/admin")]
    [InlineData("/femto/a\\..\\admin")]
    [InlineData("/femto/./status")]
    public async Task DevicePath_SpelledAmbiguously_IsRejected_AndRecordedWithTheDevice(string path)
    {
        // The same guard as on the user listener: an encoded or dotted spelling never reaches route matching by guess.
        await using var raw = await RawHttp1Connection.OpenAsync(server.DevicePort, server.SampleCertificate("FC-0001"), server.TlsRoot, Ct);
        var (status, body) = await raw.GetAsync(path, Ct);
        Assert.Equal(400, status);
        var problem = JsonDocument.Parse(body[body.IndexOf('{', StringComparison.Ordinal)..(body.LastIndexOf('}') + 1)]).RootElement; // chunk framing off
        Assert.Equal("path_rejected", problem.GetProperty("reasonCode").GetString());
        var decisionId = problem.GetProperty("decisionId").GetString();
        var decision = await server.DecisionAsync(d => d.Text("id") == decisionId, "the rejected path's decision");
        Assert.Equal(("FC-0001", "deny"), (decision.Text("subject"), decision.Text("outcome")));
    }

    [Fact]
    public async Task Readiness_SaysEachDependencysState_InJson()
    {
        using var client = server.DeviceClient(null);
        using var live = await client.GetAsync(new Uri($"https://127.0.0.1:{server.ConsolePort}/healthz"), Ct);
        Assert.Equal("healthy", (await live.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("status").GetString());

        var ready = await ReadinessAsync(client, server.ConsolePort);
        Assert.Equal("healthy", ready.GetProperty("status").GetString());
        foreach (var check in new[] { "registry", "allow-list", "decision-sinks" })
        {
            Assert.Equal("healthy", ready.GetProperty("checks").GetProperty(check).GetProperty("status").GetString());
        }
    }

    internal static async Task<JsonElement> ReadinessAsync(HttpClient client, int port)
    {
        using var response = await client.GetAsync(new Uri($"https://127.0.0.1:{port}/readyz"), TestContext.Current.CancellationToken);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(body.GetProperty("status").GetString() == "unhealthy" ? HttpStatusCode.ServiceUnavailable : HttpStatusCode.OK, response.StatusCode);
        return body;
    }

    internal static async Task<JsonElement> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string reason)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(reason, problem.GetProperty("reasonCode").GetString());
        Assert.Equal("urn:ktzerotrust:problem:" + reason, problem.GetProperty("type").GetString());
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        return problem;
    }
}

/// <summary>The decision pipeline's Prometheus metrics on the console listener.</summary>
public sealed class MetricsEndpointTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Metrics_CountDecisionsPerSink_InPrometheusText()
    {
        var ct = TestContext.Current.CancellationToken;
        using var device = server.DeviceClient(server.SampleCertificate("FC-0001"));
        Assert.Equal(HttpStatusCode.OK, (await device.GetAsync(server.DeviceUri("/femto/status"), ct)).StatusCode);
        using var console = server.DeviceClient(null);
        var metrics = new Uri($"https://127.0.0.1:{server.ConsolePort}/metrics");
        using (var anonymous = await console.GetAsync(metrics, ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode); // the metrics reader's token, nothing less
        }

        using (var wrong = new HttpRequestMessage(HttpMethod.Get, metrics))
        {
            wrong.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "not-the-token-at-all");
            Assert.Equal(HttpStatusCode.Unauthorized, (await console.SendAsync(wrong, ct)).StatusCode);
        }

        console.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer",
            (await File.ReadAllTextAsync(Path.Combine(server.DataDirectory, "metrics-token"), ct)).Trim());
        var text = await Eventually.Until(() => console.GetStringAsync(new Uri($"https://127.0.0.1:{server.ConsolePort}/metrics"), ct),
            t => t.Contains("ktzt_sink_written_total{sink=\"file\"}", StringComparison.Ordinal) && !t.Contains("ktzt_sink_written_total{sink=\"file\"} 0\n", StringComparison.Ordinal), "decisions to be counted");

        Assert.Contains("# TYPE ktzt_decisions_posted_total counter", text, StringComparison.Ordinal);
        Assert.Contains("ktzt_decisions_dropped_total 0", text, StringComparison.Ordinal);
        Assert.Contains("ktzt_sink_behind{sink=\"file\"} 0", text, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await device.GetAsync(server.DeviceUri("/metrics"), ct)).StatusCode); // not on the device listener
    }
}
