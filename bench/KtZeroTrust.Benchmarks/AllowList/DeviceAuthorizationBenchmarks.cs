using BenchmarkDotNet.Attributes;
using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.Certificates;
using KtZeroTrust.Gateway.Enforcement;

namespace KtZeroTrust.Benchmarks.AllowList;

/// <summary>The per-request device decision (allow-list v0: in-process frozen snapshot), hits and misses apart.</summary>
[MemoryDiagnoser]
public class DeviceAuthorizationBenchmarks
{
    private AllowListCache _cache = null!;
    private DeviceRequestAuthorizer _authorizer = null!;
    private DeviceConnectionIdentity _known = null!;
    private DeviceConnectionIdentity _unknown = null!;
    private CertificateHash _knownHash;
    private long _now;

    [Params(1_000, 100_000)]
    public int Devices { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _cache = new AllowListCache();
        var entries = Enumerable.Range(0, Devices).Select(i => new AllowListEntry
        {
            CertificateHash = CertificateHash.Of(BitConverter.GetBytes(i)),
            DeviceSerial = $"FC-{i:D7}",
            State = DeviceLifecycleState.Active,
            NotBeforeUtcTicks = 0,
            NotAfterUtcTicks = long.MaxValue,
        }).ToList();
        entries.ForEach(e => _cache.Apply(e));
        _authorizer = new DeviceRequestAuthorizer(_cache);
        _knownHash = entries[Devices / 2].CertificateHash;
        _known = new DeviceConnectionIdentity(_knownHash, entries[Devices / 2].DeviceSerial);
        _unknown = new DeviceConnectionIdentity(CertificateHash.Of([1, 2, 3]), "FC-X");
        _now = DateTime.UtcNow.Ticks;
    }

    [Benchmark]
    public CacheLookup AllowListHit() => _cache.Lookup(_knownHash, _now, out _);

    [Benchmark]
    public ReasonCode AuthorizeHit() => ReasonOf(_authorizer.AuthorizeAsync(_known, _now));

    [Benchmark]
    public ReasonCode AuthorizeMiss() => ReasonOf(_authorizer.AuthorizeAsync(_unknown, _now));

    // Embedded mode (no resolver): hits and misses both complete synchronously.
    private static ReasonCode ReasonOf(ValueTask<DeviceAuthorization> pending)
        => pending.IsCompletedSuccessfully ? pending.Result.Reason : throw new InvalidOperationException("did not complete synchronously");
}
