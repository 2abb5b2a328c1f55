using System.Diagnostics;
using System.Net;
using System.Text.Json;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>Enrollment with the clients a vendor would use: openssl + curl, and strongSwan's <c>pki --est</c>.</summary>
public sealed class EstRealClientTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task OpensslAndCurl_AttestEnrollAndReachTheGateway_UntilRevoked()
    {
        const string serial = "FC-0003";
        var dir = Path.Combine(server.Scratch, "openssl-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string[] tls = ["--cacert", server.Layout.TlsRootCertificate, "--cert", server.Layout.IDevIdCertificate(serial), "--key", server.Layout.IDevIdKey(serial)];

        var nonceJson = await RunAsync("curl", ["-sS", "--fail-with-body", .. tls, "-X", "POST", server.EnrollmentUri("/attest/nonce").ToString()]);
        var nonce = JsonDocument.Parse(nonceJson).RootElement.GetProperty("nonce").GetString()!;

        var claims = Path.Combine(dir, "claims.json");
        await File.WriteAllTextAsync(claims, JsonSerializer.Serialize(TestReference.HonestClaims(serial, nonce), new JsonSerializerOptions(JsonSerializerDefaults.Web)), Ct);
        var evidence = Path.Combine(dir, "evidence.der");
        await RunAsync("openssl", ["cms", "-sign", "-binary", "-nodetach", "-in", claims, "-signer", server.Layout.IDevIdCertificate(serial), "-inkey", server.Layout.IDevIdKey(serial), "-outform", "DER", "-out", evidence]);
        var attestation = await RunAsync("curl", ["-sS", "--fail-with-body", .. tls, "-H", "Content-Type: application/cms", "--data-binary", "@" + evidence, server.EnrollmentUri("/attest/evidence").ToString()]);
        Assert.Equal("pass", JsonDocument.Parse(attestation).RootElement.GetProperty("result").GetString());

        var config = Path.Combine(dir, "req.cnf");
        await File.WriteAllTextAsync(config, $"[req]\nprompt=no\ndistinguished_name=dn\nattributes=attrs\n[dn]\nCN={serial}\n[attrs]\nchallengePassword={nonce}\n", Ct);
        var key = Path.Combine(dir, "ldevid.key");
        var csr = Path.Combine(dir, "csr.der");
        await RunAsync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-config", config, "-outform", "DER", "-out", csr]);
        var csrB64 = Path.Combine(dir, "csr.b64");
        await File.WriteAllTextAsync(csrB64, Convert.ToBase64String(await File.ReadAllBytesAsync(csr, Ct)), Ct);
        var p7b64 = await RunAsync("curl", ["-sS", "--fail-with-body", .. tls, "-H", "Content-Type: application/pkcs10", "--data-binary", "@" + csrB64, server.EnrollmentUri("/.well-known/est/simpleenroll").ToString()]);
        var p7 = Path.Combine(dir, "cert.p7");
        await File.WriteAllBytesAsync(p7, Convert.FromBase64String(p7b64), Ct);
        var certificate = Path.Combine(dir, "ldevid.pem");
        await RunAsync("openssl", ["pkcs7", "-inform", "DER", "-in", p7, "-print_certs", "-out", certificate]);

        string[] device = ["-sS", "--cacert", server.Layout.TlsRootCertificate, "--cert", certificate, "--key", key, server.DeviceUri("/femto/status").ToString()];
        var body = await RunAsync("curl", device);
        Assert.Equal(serial, JsonDocument.Parse(body).RootElement.GetProperty("deviceId").GetString());

        await server.TransitionAsync(serial, DeviceLifecycleState.Revoked, "stolen after enrollment");
        // A curl whose connection is cut by the revocation itself exits non-zero: that counts as "not yet".
        var denied = await Eventually.Until(async () => await RunAsync("curl", device).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : "", TaskScheduler.Default),
            b => b.Contains("device_revoked", StringComparison.Ordinal), "curl to be refused");
        Assert.Contains("\"status\":403", denied, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StrongSwanPkiEst_WithHttpBasicAndTheEnrollmentToken_Enrolls()
    {
        const string serial = "FC-0005";
        var pki = RedisServerFixture.FindExecutable("pki") ?? throw new InvalidOperationException("strongSwan's pki is not installed; run ./test.sh (it installs strongswan-pki and libstrongswan-extra-plugins).");
        var dir = Path.Combine(server.Scratch, "strongswan-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        using var factory = server.FactoryCertificate(serial);
        using var unit = new EnrollmentClient(server, factory);
        var (nonce, token) = await unit.AttestAsync(serial, factory, Ct);

        var key = Path.Combine(dir, "key.pem");
        var request = Path.Combine(dir, "req.der");
        var issued = Path.Combine(dir, "cert.pem");
        await RunAsync(pki, ["--gen", "--type", "ecdsa", "--size", "256", "--outform", "pem"], stdoutFile: key);
        await RunAsync(pki, ["--req", "--in", key, "--type", "ecdsa", "--dn", $"CN={serial}", "--password", nonce, "--outform", "der"], stdoutFile: request);
        await RunAsync(pki, ["--est", "--url", $"https://127.0.0.1:{server.EnrollmentPort}", "--cacert", server.Layout.OperatorCaCertificate, "--cacert", server.Layout.TlsRootCertificate,
            "--in", request, "--userpass", $"{serial}:{token}", "--outform", "pem"], stdoutFile: issued);

        using var certificate = PemFiles.ReadCertificateWithKey(issued, key);
        Assert.Equal(serial, DeviceCertificates.SerialOf(certificate));
        using var device = server.DeviceClient(certificate);
        Assert.Equal(HttpStatusCode.OK, (await device.GetAsync(server.DeviceUri("/femto/status"), Ct)).StatusCode);
    }

    private static async Task<string> RunAsync(string file, string[] args, string? stdoutFile = null)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var output = stdoutFile is null ? process.StandardOutput.ReadToEndAsync(Ct) : CopyAsync(process.StandardOutput.BaseStream, stdoutFile);
        var error = process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        var stdout = await output;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {process.ExitCode}: {stdout} {await error}");
        }

        return stdout;
    }

    private static async Task<string> CopyAsync(Stream stream, string path)
    {
        await using var file = File.Create(path);
        await stream.CopyToAsync(file, Ct);
        return "";
    }
}
