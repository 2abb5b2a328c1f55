using System.Diagnostics;
using System.Globalization;
using KtZeroTrust.Benchmarks.Infrastructure;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Redis;
using Microsoft.Extensions.Logging.Abstractions;

namespace KtZeroTrust.Benchmarks.Tools;

/// <summary>Sustained decisions per second from one node into a Redis Stream through the pipeline (target >= 200,000/s).</summary>
internal static class StreamThroughput
{
    public static async Task<int> RunAsync(string[] args)
    {
        var count = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 500_000;
        using var redis = RedisProcess.Start();
        await using var client = new RedisConnection(redis.Configuration);
        var directory = Directory.CreateTempSubdirectory("ktzt-stream-bench-").FullName;
        var pipeline = new DecisionPipeline([new RedisStreamSink(client)],
            new DecisionPipelineOptions { SpoolDirectory = directory, BufferCapacity = 1 << 20, BatchSize = 1024 }, NullLogger<DecisionPipeline>.Instance);
        await pipeline.StartAsync(CancellationToken.None);
        var template = Monitoring.SampleDecision.Allowed();
        // Optional offered rate (events/s): posted in slices on schedule, so what is measured is whether the stream
        // keeps up with a steady load rather than how fast a burst drains.
        var rate = args.Length > 1 ? double.Parse(args[1], CultureInfo.InvariantCulture) : 0;
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            pipeline.Post(template);
            if (rate > 0 && (i % 1000) == 999)
            {
                var due = TimeSpan.FromSeconds((i + 1) / rate);
                if (due > watch.Elapsed)
                {
                    await Task.Delay(due - watch.Elapsed);
                }
            }
            else if ((i & 0xFFFF) == 0)
            {
                await Task.Yield();
            }
        }

        var postedIn = watch.Elapsed;

        // Done when every decision is in Redis (what was spooled on the way has been replayed).
        while (pipeline.Sinks[0] is var s && (s.Spooling || s.Written < count))
        {
            await Task.Delay(10);
        }

        var elapsed = watch.Elapsed;
        await pipeline.StopAsync(CancellationToken.None);
        var status = pipeline.Sinks[0];
        Console.WriteLine($"{count:N0} decisions to a Redis Stream in {elapsed.TotalSeconds:0.00} s = {count / elapsed.TotalSeconds:N0}/s " +
            $"(posted in {postedIn.TotalSeconds:0.00} s; written {status.Written:N0}, spooled {status.Spooled:N0}, dropped {pipeline.Dropped:N0}); stream length {await (await client.DatabaseAsync()).StreamLengthAsync("zt:decisions"):N0}");
        Directory.Delete(directory, recursive: true);
        return 0;
    }
}
