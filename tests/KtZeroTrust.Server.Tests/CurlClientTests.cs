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
