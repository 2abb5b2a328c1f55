using System.Text.Json;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// Every request on every listener ends in a recorded decision, whatever its path or however malformed it is, and every
/// refusal is problem+json with a stable reason, never a framework page (the fixture runs in Development).
/// </summary>
public sealed class RefusalRecordingTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("/x.php")]
    [InlineData("/.env")]
    [InlineData("/wp-login.php")]
    [InlineData("/config.json")]
    [InlineData("/index.html")]
    public async Task DevicePath_WithDotInLastSegment_IsIdentifiedDeniedAndRecorded(string path)
    {
        using var client = server.DeviceClient(server.SampleCertificate("FC-0003"));

        using var response = await client.GetAsync(server.DeviceUri(path), Ct);

        Assert.Equal(System.Net.HttpStatusCode.NotFound, response.StatusCode);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;
        var id = problem.GetProperty("decisionId").GetString();
        var decision = await server.DecisionAsync(d => d.Text("id") == id, "the decision for " + path);
        Assert.Equal("deny", decision.Text("outcome"));
        Assert.Equal("route_not_allowed", decision.Text("reason"));
        Assert.Equal("FC-0003", decision.Text("subject")); // the identity check ran
        Assert.Equal(path, decision.Text("path"));
    }

    [Theory]
    [InlineData("user", "/.env")]
    [InlineData("enrollment", "/.env")]
    [InlineData("enrollment", "/wp-login.php")]
    [InlineData("console", "/admin/config.json")]
    public async Task UnservedPath_OnEveryListener_IsProblemJsonAndRecorded(string listener, string path)
    {
        var port = Port(listener);

        var response = await RawTls.ExchangeAsync(port, server.TlsRoot, $"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", cancellationToken: Ct);

        Assert.Contains("application/problem+json", response, StringComparison.Ordinal);
        var id = DecisionId(response);
        var decision = await server.DecisionAsync(d => d.Text("id") == id, $"the decision for {path} on {listener}");
        Assert.Equal("deny", decision.Text("outcome"));
        Assert.Equal(listener, decision.Text("listener"));
        Assert.Equal(path, decision.Text("path"));
    }

    [Theory]
    [InlineData("device")]
    [InlineData("user")]
    [InlineData("enrollment")]
    [InlineData("console")]
    public async Task TransferEncodingWithContentLength_IsRefused400_OnEveryListener(string listener)
    {
        var request = "POST /femto/status HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n";

        var response = await RawTls.ExchangeAsync(Port(listener), server.TlsRoot, request, listener == "device" ? server.SampleCertificate("FC-0003") : null, Ct);

        Assert.Equal(400, RawTls.Status(response));
        Assert.Contains("Connection: close", response, StringComparison.OrdinalIgnoreCase);
        var decision = await server.DecisionAsync(d => d.Text("id") == DecisionId(response), "the smuggling attempt's decision");
        Assert.Equal("request_malformed", decision.Text("reason"));
        Assert.Equal(listener, decision.Text("listener"));
    }

    [Theory]
    [InlineData("enrollment", "/.well-known/est/simpleenroll", "Content-Type: application/pkcs10\r\n")]
    [InlineData("console", "/api/login", "Content-Type: application/json\r\n")]
    public async Task BodyTooSlow_Is408ProblemJson_NotAnExceptionPage_AndRecorded(string listener, string path, string contentType)
    {
        // Kestrel's minimum body rate (240 B/s after a 5 s grace) ends this request; nothing more is ever sent.
        var request = $"POST {path} HTTP/1.1\r\nHost: localhost\r\n{contentType}Content-Length: 1000\r\n\r\n{{\"user\":\"ad";

        var response = await RawTls.ExchangeAsync(Port(listener), server.TlsRoot, request, cancellationToken: Ct);

        Assert.Equal(408, RawTls.Status(response));
        Assert.Contains("application/problem+json", response, StringComparison.Ordinal);
        Assert.DoesNotContain("<html", response, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("   at ", response, StringComparison.Ordinal); // no stack trace
        var decision = await server.DecisionAsync(d => d.Text("id") == DecisionId(response), "the slow body's decision");
        Assert.Equal("request_timeout", decision.Text("reason"));
        Assert.Equal("deny", decision.Text("outcome"));
    }

    [Theory]
    [InlineData("enrollment", "GARBAGE\r\n\r\n", "request_malformed")]
    [InlineData("device", "GET / HTTP/1.1\r\nHost: localhost\r\nNo colon here\r\n\r\n", "request_malformed")]
    [InlineData("console", "GET / HTTP/7.0\r\nHost: localhost\r\n\r\n", "request_malformed")]
    [InlineData("user", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "request_malformed")]
    [InlineData("enrollment", "POST /attest/nonce HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n", "request_refused")]
    public async Task RequestRefusedByKestrelBeforeTheApplication_IsRecorded(string listener, string request, string reason)
    {
        var response = await RawTls.ExchangeAsync(Port(listener), server.TlsRoot, request, listener == "device" ? server.SampleCertificate("FC-0003") : null, Ct);

        Assert.Matches("^HTTP/1.1 [45][0-9][0-9] ", response);
        var decision = await server.DecisionAsync(
            d => d.Text("listener") == listener && d.Text("reason") == reason && (d.Text("detail") ?? "").Contains("before the application", StringComparison.Ordinal),
            "the malformed request's decision");
        Assert.Equal("deny", decision.Text("outcome"));
        Assert.Equal("127.0.0.1", decision.Text("sourceAddress"));
    }

    [Fact]
    public async Task UnitSuspendedByAnOperator_IsDeniedWithTheOperatorsReason()
    {
        await server.TransitionAsync("FC-0005", KtZeroTrust.Core.Devices.DeviceLifecycleState.Suspended, "stolen from site test-site, ticket 4711");
        using var client = server.DeviceClient(server.SampleCertificate("FC-0005"));

        var problem = await Eventually.Until(async () =>
        {
            using var response = await client.GetAsync(server.DeviceUri("/femto/status"), Ct);
            return JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;
        }, p => p.TryGetProperty("reasonCode", out var r) && r.GetString() == "device_suspended", "the suspended unit's denial");

        var decision = await server.DecisionAsync(d => d.Text("id") == problem.GetProperty("decisionId").GetString(), "the denial's decision");
        Assert.Contains("ticket 4711", decision.Text("detail") ?? "", StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("enrollment")]
    [InlineData("console")]
    [InlineData("device")]
    public async Task AFailedTlsHandshake_IsRecordedOnEveryListener(string listener)
    {
        var source = await PlainHttpToTlsPortAsync(Port(listener));

        var decision = await server.DecisionAsync(d => d.Text("listener") == listener && d.Text("reason") == "tls_handshake_failed" && SourcePort(d) == source, "the failed handshake's decision");
        Assert.Equal("deny", decision.Text("outcome"));
    }

    [Fact]
    public async Task ARefusedDeviceCertificate_IsOneDecision_NotAlsoAFailedHandshake()
    {
        using var ca = TestCertificates.CreateCa("CN=Some Other CA");
        using var foreign = TestCertificates.Device(ca, "FC-0004");
        using var client = server.DeviceClient(foreign);
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetAsync(server.DeviceUri("/femto/status"), Ct));
        var hash = KtZeroTrust.Core.Certificates.CertificateHash.Of(foreign).ToString();
        var refusal = await server.DecisionAsync(d => d.Text("certificateSha256") == hash, "the handshake refusal");
        Assert.Equal("certificate_untrusted", refusal.Text("reason"));

        // A failed handshake after it: once that one is recorded, a double of the refusal would be too.
        var later = await PlainHttpToTlsPortAsync(server.DevicePort);
        await server.DecisionAsync(d => d.Text("reason") == "tls_handshake_failed" && SourcePort(d) == later, "the later handshake's decision");
        Assert.DoesNotContain(await server.DecisionsAsync(), d => d.Text("reason") == "tls_handshake_failed" && SourcePort(d) == SourcePort(refusal));
    }

    [Fact]
    public async Task AnHttp2ProtocolViolation_IsRecorded()
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync("127.0.0.1", server.EnrollmentPort, Ct);
        var local = ((System.Net.IPEndPoint)tcp.Client.LocalEndPoint!).Port;
        await using var tls = new System.Net.Security.SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ApplicationProtocols = [System.Net.Security.SslApplicationProtocol.Http2],
            RemoteCertificateValidationCallback = (_, c, _, _) => c is System.Security.Cryptography.X509Certificates.X509Certificate2 s && KtZeroTrust.Pki.Certificates.TrustPolicies.ChainsTo(s, server.TlsRoot),
        }, Ct);
        // The connection preface, then a DATA frame on stream 0, which RFC 9113 makes a connection error.
        await tls.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray(), Ct);
        await tls.WriteAsync(new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0 }, Ct); // empty SETTINGS
        await tls.WriteAsync(new byte[] { 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff }, Ct);
        var buffer = new byte[1024];
        try
        {
            while (await tls.ReadAsync(buffer, Ct) > 0)
            {
            }
        }
        catch (IOException)
        {
        }

        var decision = await server.DecisionAsync(d => d.Text("listener") == "enrollment" && SourcePort(d) == local, "the HTTP/2 violation's decision");
        Assert.Equal(("deny", "request_refused"), (decision.Text("outcome"), decision.Text("reason")));
    }

    private static int SourcePort(JsonElement decision) => decision.TryGetProperty("sourcePort", out var p) && p.ValueKind == JsonValueKind.Number ? p.GetInt32() : -1;

    /// <summary>Plain HTTP to a TLS port (what a scanner sends); returns the local port it came from.</summary>
    private static async Task<int> PlainHttpToTlsPortAsync(int port)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port, Ct);
        var local = ((System.Net.IPEndPoint)tcp.Client.LocalEndPoint!).Port;
        await tcp.GetStream().WriteAsync("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray(), Ct);
        var buffer = new byte[256];
        try
        {
            while (await tcp.GetStream().ReadAsync(buffer, Ct) > 0)
            {
            }
        }
        catch (IOException)
        {
            // reset: the server gave up on the handshake
        }

        return local;
    }

    private int Port(string listener) => listener switch
    {
        "device" => server.DevicePort,
        "user" => server.UserPort,
        "enrollment" => server.EnrollmentPort,
        _ => server.ConsolePort,
    };

    private static string DecisionId(string response)
    {
        var start = response.IndexOf("\"decisionId\":\"", StringComparison.Ordinal);
        Assert.True(start >= 0, "no decisionId in: " + response);
        start += "\"decisionId\":\"".Length;
        return response[start..response.IndexOf('"', start)];
    }
}

/// <summary>A server whose idle detector suspends a unit unseen for 3 s (30 days in production).</summary>
public sealed class IdleDetectorServerFixture() : ServerFixture(null, null,
    ["--ZeroTrust:Detectors:Idle:After=00:00:03", "--ZeroTrust:Detectors:Idle:SweepInterval=00:00:01", "--ZeroTrust:Detectors:SnapshotInterval=00:00:01"]);

public sealed class DenialCauseTests(IdleDetectorServerFixture server) : IClassFixture<IdleDetectorServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task UnitSuspendedByTheIdleDetector_IsDeniedWithTheCause()
    {
        await Eventually.Until(async () => (await server.OpenRegistry().FindAsync("FC-0006", Ct))!.State, s => s == KtZeroTrust.Core.Devices.DeviceLifecycleState.Suspended,
            "the idle detector to suspend FC-0006", TimeSpan.FromSeconds(60));
        using var client = server.DeviceClient(server.SampleCertificate("FC-0006"));

        var problem = await Eventually.Until(async () =>
        {
            using var response = await client.GetAsync(server.DeviceUri("/femto/status"), Ct);
            return JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;
        }, p => p.TryGetProperty("reasonCode", out var r) && r.GetString() == "device_suspended", "the suspended unit's denial");

        var decision = await server.DecisionAsync(d => d.Text("id") == problem.GetProperty("decisionId").GetString(), "the denial's decision");
        Assert.Contains("device_idle", decision.Text("detail") ?? "", StringComparison.Ordinal);
        Assert.Contains("detector:idle", decision.Text("detail") ?? "", StringComparison.Ordinal);
    }
}
