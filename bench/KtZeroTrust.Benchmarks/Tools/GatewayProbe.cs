using System.Diagnostics;
using System.Globalization;
using System.Net;
using KtZeroTrust.Benchmarks.Infrastructure;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;

namespace KtZeroTrust.Benchmarks.Tools;

/// <summary>
/// Already-enrolled units using the device gateway at a fixed, modest rate (open loop: each unit sends on its own
/// clock, whether or not the last answer was slow), for a bounded time: the latency an enrolled unit sees while
/// something else (an enrollment storm) runs on the same node. Prints <c>RESULT key=value</c> lines.
/// The first <c>--warmup</c> seconds (JIT, connections) are sent but not counted.
/// <c>gateway-probe --pki DIR --url https://127.0.0.1:8443 --seconds 10 --rate 200 [--warmup 3] [--units FC-0001,FC-0002]</c>
/// </summary>
internal static class GatewayProbe
{
    public static async Task<int> RunAsync(string[] args)
    {
        var layout = new DevPkiLayout(Text(args, "--pki", "certs-dev"));
        var url = new Uri(Text(args, "--url", "https://127.0.0.1:8443"));
        var seconds = double.Parse(Text(args, "--seconds", "10"), CultureInfo.InvariantCulture);
        var rate = double.Parse(Text(args, "--rate", "200"), CultureInfo.InvariantCulture);
        var warmup = double.Parse(Text(args, "--warmup", "3"), CultureInfo.InvariantCulture);
        var serials = Text(args, "--units", "FC-0001,FC-0002,FC-0003,FC-0004").Split(',', StringSplitOptions.RemoveEmptyEntries);
        using var tlsRoot = PemFiles.ReadCertificate(layout.TlsRootCertificate);
        var latencies = new List<double>();
        var (ok, failed) = (0L, 0L);
        var stop = Stopwatch.StartNew();
        var interval = TimeSpan.FromSeconds(serials.Length / rate);
        await Task.WhenAll(serials.Select(async serial =>
        {
            using var certificate = PemFiles.ReadCertificateWithKey(layout.LDevIdCertificate(serial), layout.LDevIdKey(serial));
            using var client = DeviceClients.Create(certificate, tlsRoot);
            var mine = new List<double>();
            var pending = new List<Task>();
            using var timer = new PeriodicTimer(interval);
            while (stop.Elapsed.TotalSeconds < warmup + seconds && await timer.WaitForNextTickAsync())
            {
                pending.Add(OneAsync(counted: stop.Elapsed.TotalSeconds >= warmup));
            }

            await Task.WhenAll(pending);
            lock (latencies)
            {
                latencies.AddRange(mine);
            }

            async Task OneAsync(bool counted)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    using var response = await client.GetAsync(new Uri(url, "/femto/status"));
                    var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    if (!counted)
                    {
                        return;
                    }

                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        Interlocked.Increment(ref ok);
                        lock (mine)
                        {
                            mine.Add(ms);
                        }
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                    if (counted)
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
            }
        }));

        latencies.Sort();
        double At(double q) => latencies.Count == 0 ? double.NaN : latencies[Math.Min(latencies.Count - 1, (int)(q * latencies.Count))];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RESULT ok={ok} failed={failed} p50_ms={At(0.50):0.00} p99_ms={At(0.99):0.00} max_ms={(latencies.Count == 0 ? double.NaN : latencies[^1]):0.00}"));
        return failed == 0 ? 0 : 1;
    }

    private static string Text(string[] args, string name, string fallback)
        => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
