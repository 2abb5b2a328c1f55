using BenchmarkDotNet.Running;
using KtZeroTrust.Benchmarks.Tools;

// Two measurements are not BenchmarkDotNet's kind (a throughput ratio against redis-benchmark, and a heap size);
// they run as commands of their own. Everything else goes to BenchmarkDotNet.
return args.FirstOrDefault() switch
{
    "redis-compare" => await RedisCompare.RunAsync(args[1..]),
    "l1-memory" => L1Memory.Run(args[1..]),
    "propagation" => await Propagation.RunAsync(args[1..]),
    "stream-throughput" => await StreamThroughput.RunAsync(args[1..]),
    "pipeline-latency" => await PipelineLatency.RunAsync(args[1..]),
    "ocsp-rate" => await OcspRate.RunAsync(args[1..]),
    "fleet" => await Fleet.RunAsync(args[1..]),
    "store-load" => await StoreLoad.RunAsync(args[1..]),
    "gateway-probe" => await GatewayProbe.RunAsync(args[1..]),
    _ => Run(args),
};

static int Run(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    return 0;
}
