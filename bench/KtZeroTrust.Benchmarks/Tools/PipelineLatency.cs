using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Benchmarks.Infrastructure;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;

namespace KtZeroTrust.Benchmarks.Tools;

/// <summary>
/// The gateway's request latency with the decision stream on (JSON-lines file, Redis Stream, detectors) versus off
/// (<c>ZeroTrust:DecisionStream:Enabled=false</c>), same build, same machine, rounds alternating A B A B so drift hits
/// both. mTLS keep-alive requests from the sample fleet's certificates through the device listener to the demo
/// upstream; prints requests/s, p50 and p99 per target and the on/off ratios.
/// </summary>
internal static class PipelineLatency
{
    private static readonly string[] SampleSerials = ["FC-0001", "FC-0002", "FC-0003"];

    public static async Task<int> RunAsync(string[] args)
    {
        var connections = Option(args, "--connections", 16);
        var seconds = Option(args, "--seconds", 8);
        var rounds = Option(args, "--rounds", 3);
        var root = Propagation.FindRepositoryRoot();
        var serverDll = Path.Combine(root, "src/KtZeroTrust.Server/bin/Release/net10.0/KtZeroTrust.Server.dll");
        if (!File.Exists(serverDll))
        {
            Console.Error.WriteLine($"Build first: dotnet build -c Release ({serverDll} is missing).");
            return 2;
        }

        var work = Directory.CreateTempSubdirectory("ktzt-pipeline-latency-").FullName;
        using var redis = RedisProcess.Start();
        // Each server its own development PKI and fleet (the sample manifest of certs-dev/), so neither re-issues the other's.
        string Pki(string name)
        {
            var directory = Path.Combine(work, "pki-" + name);
            Directory.CreateDirectory(directory);
            File.Copy(Path.Combine(root, "certs-dev/manifest.json"), Path.Combine(directory, "manifest.json"));
            File.Copy(Path.Combine(root, "certs-dev/reference.json"), Path.Combine(directory, "reference.json"));
            return directory;
        }

        // --on-args "..." adds settings to the "on" server only (to take the stream apart: which sink costs what).
        var onArgs = Array.IndexOf(args, "--on-args") is var at and >= 0 && at + 1 < args.Length ? args[at + 1].Split(' ', StringSplitOptions.RemoveEmptyEntries) : [];
        var on = Start(serverDll, work, "on", Pki("on"), [$"--ZeroTrust:AllowList:Redis={redis.Configuration}", .. onArgs]);
        Target? off = null;
        try
        {
            off = Start(serverDll, work, "off", Pki("off"), [$"--ZeroTrust:AllowList:Redis={redis.Configuration}", "--ZeroTrust:DecisionStream:Enabled=false"]);
            await on.Process.WaitListeningAsync(on.Process.Ports[0]);
            await off.Process.WaitListeningAsync(off.Process.Ports[0]);
            Console.WriteLine($"{connections} keep-alive mTLS connections, {seconds} s per round, {rounds} rounds A B; Redis :{redis.Port}");

            var results = new Dictionary<string, List<Round>> { ["on"] = [], ["off"] = [] };
            foreach (var target in new[] { on, off })
            {
                await MeasureAsync(target, connections, 2); // warm-up: JIT, TLS sessions, pools
            }

            for (var r = 0; r < rounds; r++)
            {
                foreach (var target in r % 2 == 0 ? new[] { on, off } : [off, on])
                {
                    var round = await MeasureAsync(target, connections, seconds);
                    results[target.Name].Add(round);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  round {r + 1} {target.Name,-3}: {round.RequestsPerSecond,8:N0} req/s  p50 {round.P50Ms:0.000} ms  p99 {round.P99Ms:0.000} ms  errors {round.Errors}"));
                }
            }

            double Median(IEnumerable<double> values)
            {
                var sorted = values.Order().ToList();
                return sorted[sorted.Count / 2];
            }

            var (onRps, offRps) = (Median(results["on"].Select(x => x.RequestsPerSecond)), Median(results["off"].Select(x => x.RequestsPerSecond)));
            var (onP50, offP50) = (Median(results["on"].Select(x => x.P50Ms)), Median(results["off"].Select(x => x.P50Ms)));
            var (onP99, offP99) = (Median(results["on"].Select(x => x.P99Ms)), Median(results["off"].Select(x => x.P99Ms)));
            Console.WriteLine();
            Console.WriteLine("| decision stream | req/s (median) | p50 ms | p99 ms |");
            Console.WriteLine("|---|---|---|---|");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| on (file + Redis Stream + detectors) | {onRps:N0} | {onP50:0.000} | {onP99:0.000} |"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| off | {offRps:N0} | {offP50:0.000} | {offP99:0.000} |"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| on / off | {onRps / offRps:0.000}x | {onP50 / offP50:0.000}x | {onP99 / offP99:0.000}x |"));
            return 0;
        }
        finally
        {
            on.Dispose();
            off?.Dispose();
            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<Round> MeasureAsync(Target target, int connections, int seconds)
    {
        var layout = new DevPkiLayout(target.PkiDirectory);
        var certificates = SampleSerials.Select(s => PemFiles.ReadCertificateWithKey(layout.LDevIdCertificate(s), layout.LDevIdKey(s))).ToArray();
        using var tlsRoot = PemFiles.ReadCertificate(layout.TlsRootCertificate);
        var clients = certificates.Select(c => new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = connections,
            SslOptions =
            {
                ClientCertificates = [c],
                RemoteCertificateValidationCallback = (_, c, _, _) => c is X509Certificate2 server && TrustPolicies.ChainsTo(server, tlsRoot),
            },
        })).ToArray();
        var stop = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(seconds);
        var perWorker = new List<long>[connections];
        var errors = 0;
        var workers = Enumerable.Range(0, connections).Select(w => Task.Run(async () =>
        {
            var latencies = perWorker[w] = new List<long>(200_000);
            var client = clients[w % clients.Length];
            while (stop.Elapsed < deadline)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    using var response = await client.GetAsync(target.DeviceUri, HttpCompletionOption.ResponseContentRead);
                    if (response.StatusCode != HttpStatusCode.OK)
                    {
                        Interlocked.Increment(ref errors);
                    }
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref errors);
                }

                latencies.Add(Stopwatch.GetTimestamp() - start);
            }
        })).ToArray();
        await Task.WhenAll(workers);
        var elapsed = stop.Elapsed;
        foreach (var client in clients)
        {
            client.Dispose();
        }

        var all = perWorker.SelectMany(l => l).Order().ToArray();
        double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
        return new Round(all.Length / elapsed.TotalSeconds, Ms(all[all.Length / 2]), Ms(all[(int)(all.Length * 0.99)]), errors);
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private sealed record Round(double RequestsPerSecond, double P50Ms, double P99Ms, int Errors);

    /// <summary>A server under measurement and the development PKI it generated.</summary>
    private sealed record Target(ServerProcess Process, string PkiDirectory) : IDisposable
    {
        public string Name => Process.Name;

        public Uri DeviceUri => Process.DeviceUri;

        public void Dispose() => Process.Dispose();
    }

    private static Target Start(string serverDll, string work, string name, string pkiDirectory, string[] extra) => new(
        ServerProcess.Start(serverDll, Path.Combine(work, name), name,
            // Three certificates over many connections from one host are not clones.
            ["--environment=Development", $"--ZeroTrust:Pki:Directory={pkiDirectory}", "--ZeroTrust:Detectors:Clone:Enabled=false", .. extra]),
        pkiDirectory);
}
