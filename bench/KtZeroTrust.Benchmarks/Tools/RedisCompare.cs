using System.Diagnostics;
using System.Globalization;
using KtZeroTrust.Benchmarks.Infrastructure;
using KtZeroTrust.Benchmarks.Redis;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.Benchmarks.Tools;

/// <summary>
/// GET rate of StackExchange.Redis as the product uses it (one multiplexer; 64 and 256 concurrent callers) next to redis-benchmark against
/// the same server, in the same run, rounds interleaved. Prints medians (ops/s) and ratios.
/// </summary>
internal static class RedisCompare
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
        using var redis = RedisProcess.Start();
        await using var connection = new RedisConnection(redis.Configuration);
        var client = await connection.DatabaseAsync();
        await client.StringSetAsync("bench:key", new byte[32]);
        await RedisGetBenchmarks.RunAsync(client, 64, 2_000); // warm-up

        var rows = new (string Name, Func<Task<double>> Measure, List<double> Values)[]
        {
            ("StackExchange.Redis, 1 multiplexer, 64 callers", () => OursAsync(client, 64, 20_000), []),
            ("StackExchange.Redis, 1 multiplexer, 256 callers", () => OursAsync(client, 256, 5_000), []),
            ("redis-benchmark -c 64 -P 16 (pipelined)", () => RedisBenchmarkAsync(redis.Port, "-c", "64", "-P", "16", "-n", "2000000"), []),
            ("redis-benchmark -c 1 -P 64 (1 connection, 64 in flight)", () => RedisBenchmarkAsync(redis.Port, "-c", "1", "-P", "64", "-n", "2000000"), []),
            ("redis-benchmark -c 64 (no pipelining)", () => RedisBenchmarkAsync(redis.Port, "-c", "64", "-n", "500000"), []),
        };
        for (var round = 0; round < rounds; round++)
        {
            foreach (var row in rows)
            {
                row.Values.Add(await row.Measure());
            }
        }

        static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
        var reference = Median(rows[2].Values);
        Console.WriteLine($"GET, 32-byte value, {rounds} rounds interleaved, medians; ratio = row / redis-benchmark -c 64 -P 16");
        foreach (var row in rows)
        {
            Console.WriteLine($"  {row.Name,-58} {Median(row.Values),12:N0} ops/s  {Median(row.Values) / reference,5:0.00}x");
        }

        return 0;
    }

    private static async Task<double> OursAsync(IDatabase client, int callers, int perCaller)
    {
        var watch = Stopwatch.StartNew();
        await RedisGetBenchmarks.RunAsync(client, callers, perCaller);
        return callers * perCaller / watch.Elapsed.TotalSeconds;
    }

    private static async Task<double> RedisBenchmarkAsync(int port, params string[] extra)
    {
        var info = new ProcessStartInfo("redis-benchmark") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-t", "get", "-d", "32", "--csv" }.Concat(extra))
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("redis-benchmark did not start (Debian package redis-tools).");
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        // CSV: "test","rps",...  then "GET","123456.78",...
        var line = output.Split('\n').First(l => l.StartsWith("\"GET\"", StringComparison.Ordinal));
        return double.Parse(line.Split(',')[1].Trim('"'), CultureInfo.InvariantCulture);
    }
}
