using BenchmarkDotNet.Attributes;
using KtZeroTrust.Benchmarks.Infrastructure;
using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.AllowList.Redis;
using KtZeroTrust.Gateway.Identity;
using KtZeroTrust.Redis;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Benchmarks.AllowList;

/// <summary>
/// An L1 miss served by Redis (L2): the entry is evicted from L1 before each operation, so every call is a real
/// round trip to a local redis-server through the multiplexed client, plus decode and L1 fill.
/// </summary>
[MemoryDiagnoser]
public class RedisAllowListBenchmarks
{
    private RedisProcess _redis = null!;
    private GatewayRedis _gatewayRedis = null!;
    private RedisConnections _connections = null!;
    private AllowListCache _cache = null!;
    private DeviceRequestAuthorizer _authorizer = null!;
    private DeviceConnectionIdentity _identity = null!;
    private long _now;

    [GlobalSetup]
    public void Setup()
    {
        _redis = RedisProcess.Start();
        var options = Options.Create(new AllowListOptions { Redis = _redis.Configuration });
        _connections = new RedisConnections();
        _gatewayRedis = new GatewayRedis(options, _connections);
        // The feed is live (as the sync service sets it once its subscription answers): misses go to Redis.
        _gatewayRedis.SetFeedConnected(true);
        var entry = new AllowListEntry
        {
            CertificateHash = CertificateHash.Of([42]),
            DeviceSerial = "FC-0000042",
            State = DeviceLifecycleState.Active,
            NotBeforeUtcTicks = 0,
            NotAfterUtcTicks = DateTime.UtcNow.AddDays(7).Ticks,
            Version = 1,
        };
        _gatewayRedis.Store.WriteAsync([entry], DateTimeOffset.UtcNow).GetAwaiter().GetResult();
        _cache = new AllowListCache();
        var resolver = new RedisAllowListResolver(_gatewayRedis, options, TimeProvider.System, NullLogger<RedisAllowListResolver>.Instance);
        _authorizer = new DeviceRequestAuthorizer(_cache, resolver, options.Value);
        _identity = new DeviceConnectionIdentity(entry.CertificateHash, entry.DeviceSerial);
        _now = DateTime.UtcNow.Ticks;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _connections.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _redis.Dispose();
    }

    [Benchmark]
    public async Task<ReasonCode> L1MissServedByRedis()
    {
        _cache.Remove(_identity.Hash, 1);
        var result = await _authorizer.AuthorizeAsync(_identity, _now);
        return result.Reason == ReasonCode.Allowed ? result.Reason : throw new InvalidOperationException(result.Reason.ToString());
    }
}
