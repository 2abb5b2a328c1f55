using System.Net;
using KtZeroTrust.Gateway.Identity;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.DependencyInjection;

namespace KtZeroTrust.Server.Tests;

public sealed class HandshakeLimitServerFixture() : ServerFixture(null, null,
    ["--ZeroTrust:Gateway:Handshakes:MaxConcurrent=2", "--ZeroTrust:Gateway:Handshakes:MaxWaiting=2", "--ZeroTrust:Gateway:Handshakes:MaxWait=00:00:00.300"]);

/// <summary>The device listener with room for 2 handshakes at once and 2 waiting: a reconnect storm is shed at the TLS level, and it recovers.</summary>
public sealed class HandshakeStormTests(HandshakeLimitServerFixture server) : IClassFixture<HandshakeLimitServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AFullListener_RefusesANewConnectionWithATlsAlert_RecordsListenerBusy_AndAdmitsAgainOnceThereIsRoom()
    {
        var admission = server.Services.GetRequiredService<DeviceHandshakeAdmission>();
        var shedBefore = admission.Shed;
        string[] curl = ["-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", server.Layout.TlsRootCertificate,
            "--cert", server.Layout.LDevIdCertificate("FC-0002"), "--key", server.Layout.LDevIdKey("FC-0002"), server.DeviceUri("/femto/status").ToString()];
        using (await admission.EnterAsync(Ct))
        using (await admission.EnterAsync(Ct)) // both slots taken, as by two slow handshakes
        {
            var (exit, output) = await Tools.RunAsync("curl", curl, Ct);
            Assert.Equal(35, exit); // CURLE_SSL_CONNECT_ERROR: refused in TLS, not a dropped TCP connection
            Assert.Contains("alert internal error", output, StringComparison.Ordinal);
        }

        Assert.Equal(shedBefore + 1, admission.Shed);
        var busy = await server.DecisionAsync(d => d.Text("reason") == "listener_busy", "the refused connection's decision");
        Assert.Equal(("deny", "device", "127.0.0.1"), (busy.Text("outcome"), busy.Text("listener"), busy.Text("sourceAddress")));

        var (again, status) = await Tools.RunAsync("curl", curl, Ct);
        Assert.True(again == 0 && status.StartsWith("200", StringComparison.Ordinal), status); // room again: admitted at once
        Assert.Equal((0, 0), (admission.InProgress, admission.Waiting));
    }

    [Fact]
    public async Task ConnectionsThatSendNothing_OrHalfAClientHello_HoldNoSlot_KeepNoUnitOut_AndAreRecordedAtTheTimeout()
    {
        // More silent sockets than the listener has slots and waiting places together (2 + 2), and one that sent a
        // record header announcing more than it sends: none of them may stand between a unit and its handshake.
        var admission = server.Services.GetRequiredService<DeviceHandshakeAdmission>();
        var shedBefore = admission.Shed;
        var failedBefore = (await server.DecisionsAsync()).Count(d => d.Text("reason") == "tls_handshake_failed" && d.Text("route") == "tls-handshake");
        var silent = new List<System.Net.Sockets.TcpClient>();
        try
        {
            for (var i = 0; i < 6; i++)
            {
                var socket = new System.Net.Sockets.TcpClient();
                await socket.ConnectAsync(IPAddress.Loopback, server.DevicePort, Ct);
                silent.Add(socket);
            }

            await silent[0].GetStream().WriteAsync(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 }, Ct); // 512 bytes announced, 1 sent

            using var client = server.DeviceClient(server.SampleCertificate("FC-0004"));
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(server.DeviceUri("/femto/status"), Ct)).StatusCode);
            Assert.Equal((0, 0), (admission.InProgress, admission.Waiting));
            Assert.Equal(shedBefore, admission.Shed);

            // Still silent at the handshake timeout: each is closed and recorded as the failed handshake it is.
            await Eventually.Until(async () => (await server.DecisionsAsync()).Count(d => d.Text("reason") == "tls_handshake_failed" && d.Text("route") == "tls-handshake") - failedBefore,
                n => n == silent.Count, "a tls_handshake_failed decision per silent socket", TimeSpan.FromSeconds(60));
        }
        finally
        {
            silent.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task AReconnectStorm_OfEveryUnitAtOnce_IsShedAtTheTlsLevelOnly_AndEveryUnitGetsBackIn()
    {
        // 60 new connections at once (the six units, ten each) on room for 2 handshakes and 2 waiting: 15x.
        var admission = server.Services.GetRequiredService<DeviceHandshakeAdmission>();
        var shedBefore = admission.Shed;
        var earlier = await server.DecisionsAsync();
        var busyBefore = earlier.Count(d => d.Text("reason") == "listener_busy");
        var attempts = ServerFixture.Serials.SelectMany(serial => Enumerable.Range(0, 10).Select(_ => serial)).Select(async serial =>
        {
            using var client = server.DeviceClient(server.SampleCertificate(serial)); // a fresh connection each
            try
            {
                using var response = await client.GetAsync(server.DeviceUri("/femto/status"), Ct);
                return response.StatusCode == HttpStatusCode.OK ? "allowed" : $"HTTP {(int)response.StatusCode}";
            }
            catch (HttpRequestException ex) when (ex.HttpRequestError == HttpRequestError.SecureConnectionError)
            {
                return "refused in TLS";
            }
        }).ToList();
        var outcomes = await Task.WhenAll(attempts);

        // Nothing but an answer or a TLS refusal: no unit is denied for a wrong reason, no connection dropped otherwise.
        Assert.All(outcomes, o => Assert.True(o is "allowed" or "refused in TLS", o));
        var refused = outcomes.Count(o => o == "refused in TLS");
        Assert.Equal(refused, admission.Shed - shedBefore); // each refusal is one shed connection, and only those
        await Eventually.Until(async () => (await server.DecisionsAsync()).Count(d => d.Text("reason") == "listener_busy") - busyBefore,
            n => n == refused, "a listener_busy decision per refused connection");
        Assert.DoesNotContain((await server.DecisionsAsync()).Skip(earlier.Count), d => d.Text("listener") == "device" && d.Text("outcome") == "deny" && d.Text("reason") != "listener_busy");

        // It recovers by itself: every unit is admitted afterwards, and the listener holds nothing.
        foreach (var serial in ServerFixture.Serials)
        {
            using var client = server.DeviceClient(server.SampleCertificate(serial));
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(server.DeviceUri("/femto/status"), Ct)).StatusCode);
        }

        Assert.Equal((0, 0), (admission.InProgress, admission.Waiting));
    }
}
