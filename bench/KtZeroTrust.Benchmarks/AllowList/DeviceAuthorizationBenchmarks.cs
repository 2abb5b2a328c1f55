using BenchmarkDotNet.Attributes;
using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.Identity;

namespace KtZeroTrust.Benchmarks.AllowList;

/// <summary>The per-request device decision from the in-process L1: hit, negative-cache hit and miss apart.</summary>
[MemoryDiagnoser]
public class DeviceAuthorizationBenchmarks
{
    private AllowListCache _cache = null!;
    private DeviceRequestAuthorizer _authorizer = null!;
    private DeviceConnectionIdentity _known = null!;
    private DeviceConnectionIdentity _unknown = null!;
    private DeviceConnectionIdentity _negative = null!;
    private CertificateHash _knownHash;
    private CertificateHash _negativeHash;
    private long _now;

    [Params(1_000, 1_000_000)]
    public int Devices { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _cache = new AllowListCache();
        AllowListEntry? middle = null;
        for (var i = 0; i < Devices; i++)
        {
            var entry = Tools.SampleEntries.Active(i);
            _cache.Apply(entry);
            middle = i == Devices / 2 ? entry : middle;
        }

        _authorizer = new DeviceRequestAuthorizer(_cache);
        _now = DateTime.UtcNow.Ticks;
        _knownHash = middle!.CertificateHash;
        _known = new DeviceConnectionIdentity(_knownHash, middle.DeviceSerial);
        _unknown = new DeviceConnectionIdentity(CertificateHash.Of([1, 2, 3]), "FC-X");
        _negativeHash = CertificateHash.Of([4, 5, 6]);
        _negative = new DeviceConnectionIdentity(_negativeHash, "FC-Y");
        _cache.RememberUnknown(_negativeHash, _now, long.MaxValue);
    }

    /// <summary>L1 lookup alone.</summary>
    [Benchmark]
    public CacheLookup L1Hit() => _cache.Lookup(_knownHash, _now, out _);

    /// <summary>L1 lookup of a certificate remembered as unknown.</summary>
    [Benchmark]
    public CacheLookup NegativeCacheHit() => _cache.Lookup(_negativeHash, _now, out _);

    /// <summary>The whole per-request authorization step: identity -> L1 -> lifecycle/validity decision.</summary>
    [Benchmark]
    public ReasonCode AuthorizeHit() => ReasonOf(_authorizer.AuthorizeAsync(_known, _now));

    [Benchmark]
    public ReasonCode AuthorizeNegativeHit() => ReasonOf(_authorizer.AuthorizeAsync(_negative, _now));

    /// <summary>Embedded mode (L1 complete, no L2): an unknown certificate is denied on the spot.</summary>
    [Benchmark]
    public ReasonCode AuthorizeMissEmbedded() => ReasonOf(_authorizer.AuthorizeAsync(_unknown, _now));

    private static ReasonCode ReasonOf(ValueTask<DeviceAuthorization> pending)
        => pending.IsCompletedSuccessfully ? pending.Result.Reason : throw new InvalidOperationException("did not complete synchronously");
}
