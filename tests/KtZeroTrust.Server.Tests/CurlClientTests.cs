using System.Diagnostics;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>The README walkthrough, with curl as the outside client presenting PEM files.</summary>
public sealed class CurlClientTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Curl_WithSampleDeviceCertificate_GetsUpstreamAnswer()
    {
        var (status, body) = await CurlAsync("FC-0005", "/femto/status");

        Assert.Equal("200", status);
        Assert.Contains("\"deviceId\":\"FC-0005\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Curl_WithRevokedDevice_Gets403WithReasonCode()
    {
        await server.TransitionAsync("FC-0006", DeviceLifecycleState.Revoked, "lost in 2020");

        var (status, body) = await Eventually.Until(() => CurlAsync("FC-0006", "/femto/status"), r => r.Status == "403", "curl to see 403");

        Assert.Contains("\"reasonCode\":\"device_revoked\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Curl_WithoutClientCertificate_FailsTheHandshake()
    {
        var (status, _) = await RunCurlAsync(["--cacert", server.Layout.TlsRootCertificate, server.DeviceUri("/femto/status").ToString()]);

        Assert.Equal("000", status);
    }

    [Fact]
    public async Task DeviceListener_NeverResumesASession_EveryConnectionProvesTheDeviceKey()
    {
        // A resumption ticket lifted from a unit's memory would let its holder connect as the device without the key
        // (which lives in the unit's secure element); the device listener issues none, so each connection is a full
        // handshake with the client certificate. openssl offers the saved session on its second connection.
        var session = Path.Combine(server.Scratch, $"session-{Guid.NewGuid():N}.pem");
        var first = await OpenSslAsync("FC-0005", ["-sess_out", session]);
        var second = await OpenSslAsync("FC-0005", ["-sess_in", session]);

        Assert.Contains("HTTP/1.1 200", first, StringComparison.Ordinal);
        Assert.Contains("HTTP/1.1 200", second, StringComparison.Ordinal);
        Assert.Contains("New, TLSv1.3", second, StringComparison.Ordinal);
        Assert.DoesNotContain("Reused,", second, StringComparison.Ordinal);
    }

    private async Task<string> OpenSslAsync(string serial, string[] sessionArgs)
    {
        var info = new ProcessStartInfo("openssl") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "s_client", "-connect", $"127.0.0.1:{server.DevicePort}", "-servername", "localhost", "-CAfile", server.Layout.TlsRootCertificate,
            "-cert", server.Layout.LDevIdCertificate(serial), "-key", server.Layout.LDevIdKey(serial), "-ign_eof" }.Concat(sessionArgs))
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        await process.StandardInput.WriteAsync("GET /femto/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = await process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return await output + errors;
    }

    private Task<(string Status, string Body)> CurlAsync(string serial, string path)
        => RunCurlAsync(["--cacert", server.Layout.TlsRootCertificate, "--cert", server.Layout.LDevIdCertificate(serial), "--key", server.Layout.LDevIdKey(serial), server.DeviceUri(path).ToString()]);

    private async Task<(string Status, string Body)> RunCurlAsync(string[] args)
    {
        var bodyFile = Path.Combine(server.Scratch, $"curl-{Guid.NewGuid():N}.out");
        var info = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-sS", "--max-time", "20", "-o", bodyFile, "-w", "%{http_code}" }.Concat(args))
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var status = await process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        var body = File.Exists(bodyFile) ? await File.ReadAllTextAsync(bodyFile, TestContext.Current.CancellationToken) : "";
        return (status.Trim(), body);
    }
}
