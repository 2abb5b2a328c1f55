using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using KtZeroTrust.Benchmarks.Infrastructure;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Redis;
using KtZeroTrust.Registry.Redis;
using KtZeroTrust.Registry.Sqlite;

namespace KtZeroTrust.Benchmarks.Tools;

/// <summary>
/// Revocation propagation across a fleet of gateways: a real redis-server, three gateway processes and an admin node
/// (the real server, built in Release), all on loopback, sharing one registry file. Devices keep sending requests;
/// they are revoked one by one the way <c>ztctl --redis device revoke</c> does it (registry commit, then write-through
/// and push via Redis), and for each revocation the time from the start of the revoke call until every gateway has
/// denied the device (a 403, or its open connection cut) is recorded. Prints p50/p90/p99/max.
/// </summary>
internal static class Propagation
{
    public static async Task<int> RunAsync(string[] args)
    {
        var revocations = Option(args, "--revocations", 120);
        var gateways = Option(args, "--gateways", 3);
        var root = FindRepositoryRoot();
        var serverDll = Path.Combine(root, "src/KtZeroTrust.Server/bin/Release/net10.0/KtZeroTrust.Server.dll");
        if (!File.Exists(serverDll))
        {
            Console.Error.WriteLine($"Build first: dotnet build -c Release ({serverDll} is missing).");
            return 2;
        }

        var work = Directory.CreateTempSubdirectory("ktzt-propagation-").FullName;
        var nodes = new List<ServerProcess>();
        using var redis = RedisProcess.Start();
        try
        {
            var serials = Enumerable.Range(1, revocations + 8).Select(i => $"FC-P{i:D4}").ToArray();
            var layout = new DevPkiLayout(Path.Combine(work, "pki"));
            Directory.CreateDirectory(layout.Directory);
            await File.WriteAllTextAsync(layout.Manifest, JsonSerializer.Serialize(new
            {
                vendor = "Propagation bench",
                devices = serials.Select(s => new { serial = s, model = "KTF-HNB-5G", site = "bench", idevidCertificate = $"idevid/{s}.pem" }),
            }));
            var registryPath = Path.Combine(work, "registry.db");

            Console.WriteLine($"Starting redis-server :{redis.Port}, an admin node and {gateways} gateway nodes (work dir {work})...");
            var admin = StartNode(serverDll, work, "admin", layout.Directory, registryPath, redis.Configuration, gateway: false);
            nodes.Add(admin);
            await admin.WaitListeningAsync(admin.Ports[1]); // enrollment listener: up once the fleet is imported and issued
            for (var g = 0; g < gateways; g++)
            {
                var node = StartNode(serverDll, work, $"gateway-{g + 1}", layout.Directory, registryPath, redis.Configuration, gateway: true);
                nodes.Add(node);
            }

            foreach (var node in nodes.Skip(1))
            {
                await node.WaitListeningAsync(node.Ports[0]);
            }

            using var tlsRoot = PemFiles.ReadCertificate(layout.TlsRootCertificate);
            var certificates = serials.ToDictionary(s => s, s => PemFiles.ReadCertificateWithKey(layout.LDevIdCertificate(s), layout.LDevIdKey(s)));
            var gatewayNodes = nodes.Skip(1).ToList();

            await using var redisClient = new RedisConnection(redis.Configuration);
            var sqlite = new SqliteDeviceRegistry(registryPath, TimeProvider.System);
            using var synchronizer = new RegistryRedisSynchronizer(sqlite, new RedisAllowListStore(redisClient), TimeProvider.System);
            var registry = new WriteThroughDeviceRegistry(sqlite, synchronizer, ex => Console.Error.WriteLine($"write-through failed: {ex.Message}"));

            // Background traffic: the devices not revoked in this run keep talking to every gateway.
            using var stopBackground = new CancellationTokenSource();
            var background = serials.Skip(revocations).Take(4)
                .SelectMany(s => gatewayNodes.Select(n => KeepTalkingAsync(n, certificates[s], tlsRoot, stopBackground.Token)))
                .ToList();

            var results = new List<double>();
            var commits = new List<double>();
            var perNode = gatewayNodes.ToDictionary(n => n.Name, _ => new List<double>());
            for (var i = 0; i < revocations; i++)
            {
                var serial = serials[i];
                using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                var probes = gatewayNodes.Select(n => new DenialProbe(n.Name, n.DeviceUri, certificates[serial], tlsRoot)).ToList();
                var running = probes.Select(p => p.RunAsync(stop.Token)).ToList();
                await Task.WhenAll(probes.Select(p => p.Allowed.Task)).WaitAsync(TimeSpan.FromSeconds(30));

                var start = Stopwatch.GetTimestamp();
                foreach (var probe in probes)
                {
                    probe.Start = start;
                }

                await registry.TransitionAsync(serial, DeviceLifecycleState.Revoked, "bench:propagation", "propagation measurement");
                commits.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(30));
                var times = probes.Select(p => p.DeniedAfterMs).ToList();
                results.Add(times.Max());
                for (var n = 0; n < probes.Count; n++)
                {
                    perNode[probes[n].Node].Add(times[n]);
                }

                probes.ForEach(p => p.Dispose());
            }

            await stopBackground.CancelAsync();
            await Task.WhenAll(background);

            Console.WriteLine();
            Console.WriteLine($"Revocation -> denied on all {gateways} gateways, {results.Count} revocations (ms from the start of the revoke call):");
            Console.WriteLine($"  p50 {Percentile(results, 50),7:0.0}   p90 {Percentile(results, 90),7:0.0}   p99 {Percentile(results, 99),7:0.0}   max {results.Max(),7:0.0}");
            Console.WriteLine($"  of which the revoke call itself (registry commit + Redis write + publish): p50 {Percentile(commits, 50):0.0}   p99 {Percentile(commits, 99):0.0}");
            foreach (var (name, values) in perNode)
            {
                Console.WriteLine($"  {name,-10} p50 {Percentile(values, 50),7:0.0}   p99 {Percentile(values, 99),7:0.0}");
            }

            return 0;
        }
        finally
        {
            foreach (var node in nodes)
            {
                node.Dispose();
            }

            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task KeepTalkingAsync(ServerProcess node, X509Certificate2 certificate, X509Certificate2 tlsRoot, CancellationToken stop)
    {
        using var client = DeviceClients.Create(certificate, tlsRoot);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                using var _ = await client.GetAsync(node.DeviceUri, stop);
                await Task.Delay(20, stop);
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
            {
            }
        }
    }

    internal static double Percentile(List<double> values, int p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p / 100.0 * sorted.Count) - 1)];
    }

    internal static int Option(string[] args, string name, int fallback)
    {
        var at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
    }

    internal static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "KtZeroTrust.sln")))
            {
                return dir.FullName;
            }
        }

        return Directory.GetCurrentDirectory();
    }

    /// <summary>An admin node (registry, attestation, console, Redis sync) or a pure gateway, all sharing the PKI and registry file.</summary>
    private static ServerProcess StartNode(string serverDll, string work, string name, string pkiDirectory, string registryPath, string redis, bool gateway)
        => ServerProcess.Start(serverDll, Path.Combine(work, name), name,
        [
            "--environment=Development", $"--ZeroTrust:Pki:Directory={pkiDirectory}", $"--ZeroTrust:Registry:SqlitePath={registryPath}",
            $"--ZeroTrust:Roles:Gateway={gateway}", $"--ZeroTrust:Roles:Attestation={!gateway}", $"--ZeroTrust:Roles:Console={!gateway}",
            $"--ZeroTrust:DemoUpstream:Enabled={gateway}", $"--ZeroTrust:AllowList:Redis={redis}",
            // Pure gateways learn changes by push only; the admin node alone synchronises the registry into Redis.
            $"--ZeroTrust:AllowList:SyncRegistryToRedis={!gateway}",
        ]);
}
