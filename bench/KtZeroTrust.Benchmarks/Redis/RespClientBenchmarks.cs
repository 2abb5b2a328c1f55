using BenchmarkDotNet.Attributes;
using KtZeroTrust.Benchmarks.Infrastructure;
using KtZeroTrust.Redis;

namespace KtZeroTrust.Benchmarks.Redis;

/// <summary>GET through one multiplexed connection from 64 concurrent callers (each awaiting its own replies).</summary>
[MemoryDiagnoser]
public class RespClientBenchmarks
{
    public const int Callers = 64;
    public const int GetsPerCaller = 500;
    private RedisProcess _redis = null!;
    private RedisClient _client = null!;

    [GlobalSetup]
    public void Setup()
    {
        _redis = RedisProcess.Start();
        _client = RedisClient.ConnectAsync(RedisOptions.Parse(_redis.Configuration)).GetAwaiter().GetResult();
        _client.StringSetAsync("bench:key", new byte[32]).GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _redis.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Callers * GetsPerCaller)]
    public Task Get64ConcurrentCallers() => RunAsync(_client, Callers, GetsPerCaller);

    public static Task RunAsync(IRedisClient client, int callers, int getsPerCaller)
    {
        var tasks = new Task[callers];
        for (var c = 0; c < callers; c++)
        {
            tasks[c] = Task.Run(async () =>
            {
                for (var i = 0; i < getsPerCaller; i++)
                {
                    _ = await client.StringGetAsync("bench:key");
                }
            });
        }

        return Task.WhenAll(tasks);
    }
}
