using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using StackExchange.Redis;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Redis;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// The server as a real process, killed with SIGKILL under load while Redis is down, then started again: every decision a
/// client was answered with (its id is in the response) is in the local log and in the Redis Stream afterwards.
/// </summary>
public sealed class CrashDurabilityTests(PersistentRedisServerFixture redis) : IClassFixture<PersistentRedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ServerKilledWhileRedisIsDown_LosesNoAnsweredDecision_FromTheLogOrTheStream()
    {
        using var temp = new TempDirectory("crash");
        var pki = temp.Combine("pki");
        Directory.CreateDirectory(pki);
        File.Copy(Path.Combine(RepositoryPaths.Root, "certs-dev", "manifest.json"), Path.Combine(pki, "manifest.json"));
        File.Copy(Path.Combine(RepositoryPaths.Root, "certs-dev", "reference.json"), Path.Combine(pki, "reference.json"));
        var ports = FreePorts.Next(5);
        var stream = "zt:decisions:crash-" + Guid.NewGuid().ToString("N")[..8];
        string[] args = [.. ServerFixture.Arguments(pki, temp.Combine("data"), ports, "Development"),
            $"--ZeroTrust:DecisionStream:Redis={redis.Configuration},connectTimeout=500,commandTimeout=1000", $"--ZeroTrust:DecisionStream:StreamKey={stream}",
            "--ZeroTrust:Detectors:Enabled=false"];

        var answered = new List<string>();
        using (var first = await ServerProcess.StartAsync(args, temp.Path, ports[0], pki))
        {
            using var client = first.DeviceClient();
            await SendAsync(client, ports[0], 50, answered);
            await redis.StopAsync(); // the stream's lane now holds decisions in memory only
            await SendAsync(client, ports[0], 300, answered);
            first.Kill(); // SIGKILL: no shutdown, no flush
        }

        await redis.StartAsync();
        using var second = await ServerProcess.StartAsync(args, temp.Path, ports[0], pki);
        await using var reader = new RedisConnection(redis.Configuration + ",commandTimeout=30000");

        var stillMissing = await Eventually.Until(async () => answered.Except((await DecisionStreamReading.DecisionIdsAsync(reader, stream, Ct))).Count(), missing => missing == 0,
            $"every one of the {answered.Count} answered decisions in the Redis Stream (value: how many are missing)", TimeSpan.FromSeconds(90));
        var missingFromStream = answered.Except((await DecisionStreamReading.DecisionIdsAsync(reader, stream, Ct))).ToList();
        var log = (await File.ReadAllLinesAsync(Path.Combine(temp.Combine("data"), "decisions.jsonl"), Ct))
            .Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()!).ToHashSet();
        Assert.Equal(0, stillMissing);
        Assert.Empty(missingFromStream);
        var missingFromLog = answered.Where(id => !log.Contains(id)).ToList();
        Assert.Empty(missingFromLog);
    }

    private static async Task SendAsync(HttpClient client, int port, int count, List<string> answered)
    {
        for (var i = 0; i < count; i++)
        {
            using var response = await client.GetAsync(new Uri($"https://127.0.0.1:{port}/femto/status"), Ct);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
            answered.Add(body.GetProperty("decisionId").GetString()!);
        }
    }

    /// <summary>The built server binary run as its own process, ready once a sample unit gets a 200.</summary>
    private sealed class ServerProcess : IDisposable
    {
        private readonly Process _process;
        private readonly string _pki;
        private readonly TlsRootHolder _root;

        private ServerProcess(Process process, string pki)
        {
            _process = process;
            _pki = pki;
            _root = new TlsRootHolder(pki);
        }

        public static async Task<ServerProcess> StartAsync(string[] args, string workingDirectory, int devicePort, string pki)
        {
            var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = workingDirectory };
            info.ArgumentList.Add(RepositoryPaths.ServerDll);
            foreach (var a in args)
            {
                info.ArgumentList.Add(a);
            }

            var process = Process.Start(info)!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var server = new ServerProcess(process, pki);
            try
            {
                await Eventually.Until(async () =>
                {
                    if (process.HasExited)
                    {
                        throw new InvalidOperationException($"the server exited with {process.ExitCode}");
                    }

                    if (!File.Exists(new DevPkiLayout(pki).LDevIdKey("FC-0001")))
                    {
                        return 0; // the first start is still writing the development PKI
                    }

                    using var client = server.DeviceClient();
                    using var response = await client.GetAsync(new Uri($"https://127.0.0.1:{devicePort}/healthz-probe"), Ct);
                    return (int)response.StatusCode;
                }, status => status > 0, "the server to listen", TimeSpan.FromSeconds(60));
            }
            catch
            {
                server.Dispose();
                throw;
            }

            return server;
        }

        public HttpClient DeviceClient()
        {
            var layout = new DevPkiLayout(_pki);
            var certificate = PemFiles.ReadCertificateWithKey(layout.LDevIdCertificate("FC-0001"), layout.LDevIdKey("FC-0001"));
            var handler = new SocketsHttpHandler
            {
                SslOptions = new System.Net.Security.SslClientAuthenticationOptions
                {
                    ClientCertificates = [certificate],
                    RemoteCertificateValidationCallback = (_, c, _, _) => c is System.Security.Cryptography.X509Certificates.X509Certificate2 s && TrustPolicies.ChainsTo(s, _root.Root),
                },
            };
            return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
        }

        public void Kill()
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }

            _process.Dispose();
        }
    }

    /// <summary>The development TLS root, read once the server has generated it.</summary>
    private sealed class TlsRootHolder(string pki)
    {
        private System.Security.Cryptography.X509Certificates.X509Certificate2? _root;

        public System.Security.Cryptography.X509Certificates.X509Certificate2 Root => _root ??= PemFiles.ReadCertificate(new DevPkiLayout(pki).TlsRootCertificate);
    }
}
