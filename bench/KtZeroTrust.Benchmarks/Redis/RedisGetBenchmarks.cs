using BenchmarkDotNet.Attributes;
using KtZeroTrust.Benchmarks.Infrastructure;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.Benchmarks.Redis;

/// <summary>GET through the shared StackExchange.Redis multiplexer from 64 concurrent callers (each awaiting its own replies).</summary>
[MemoryDiagnoser]
public class RedisGetBenchmarks
{
    public const int Callers = 64;
    public const int GetsPerCaller = 500;
    private RedisProcess _redis = null!;
    private RedisConnection _client = null!;
    private IDatabase _db = null!;

    [GlobalSetup]
    public void Setup()
    {
        _redis = RedisProcess.Start();
        _client = new RedisConnection(_redis.Configuration);
        _db = _client.DatabaseAsync().AsTask().GetAwaiter().GetResult();
        _db.StringSet("bench:key", new byte[32]);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _redis.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Callers * GetsPerCaller)]
    public Task Get64ConcurrentCallers() => RunAsync(_db, Callers, GetsPerCaller);

    public static Task RunAsync(IDatabase client, int callers, int getsPerCaller)
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
