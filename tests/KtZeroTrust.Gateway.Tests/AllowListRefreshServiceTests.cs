using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.Identity;
using Microsoft.Extensions.Logging.Abstractions;

namespace KtZeroTrust.Gateway.Tests;

public sealed class AllowListRefreshServiceTests
{
    private sealed class Source : IAllowListSource
    {
        public long Version { get; set; } = 1;
        public bool Fail { get; set; }
        public List<long> LoadsSince { get; } = [];
        public List<AllowListEntry> Entries { get; } = [];

        public Task<long> GetVersionAsync(CancellationToken cancellationToken = default)
            => Fail ? throw new IOException("registry unreachable") : Task.FromResult(Version);

        public Task<AllowListChanges> LoadAllowListChangesAsync(long sinceVersion, CancellationToken cancellationToken = default)
        {
            LoadsSince.Add(sinceVersion);
            return Task.FromResult(new AllowListChanges(Version, Entries.Where(e => e.Version > sinceVersion).ToList()));
        }

        public Task<AllowListEntry?> FindAllowListEntryAsync(CertificateHash certificateHash, CancellationToken cancellationToken = default)
            => Task.FromResult(Entries.LastOrDefault(e => e.CertificateHash == certificateHash));
    }

    private sealed class Sink : IDecisionSink
    {
        public List<DecisionEvent> Events { get; } = [];

        public void Post(DecisionEvent decision) => Events.Add(decision);
    }

    private static AllowListEntry Entry(byte b, long version, DeviceLifecycleState state = DeviceLifecycleState.Active) => new()
    {
        CertificateHash = CertificateHash.Of([b]),
        DeviceSerial = "D" + b,
        State = state,
        NotBeforeUtcTicks = 0,
        NotAfterUtcTicks = long.MaxValue,
        Version = version,
    };

    [Fact]
    public async Task Refresh_LoadsOnlyChangesSinceItsVersion_AndKeepsTheCacheWhenTheSourceFails()
    {
        var source = new Source();
        source.Entries.Add(Entry(1, 1));
        var cache = new AllowListCache();
        var tracker = new DeviceConnectionTracker(new Sink(), new DecisionFactory("test-node", TimeProvider.System), NullLogger<DeviceConnectionTracker>.Instance);
        using var service = new RegistryAllowListFeed(source, cache, new AllowListUpdates(cache, tracker, TimeProvider.System), NullLogger<RegistryAllowListFeed>.Instance);
        var ct = TestContext.Current.CancellationToken;

        await service.RefreshAsync(ct);
        await service.RefreshAsync(ct);
        Assert.Equal((1, 1L), (cache.Count, cache.Version));
        Assert.Equal([-1L], source.LoadsSince); // the second poll saw the same version and loaded nothing

        source.Entries.Add(Entry(2, 2));
        source.Entries.Add(Entry(1, 2, DeviceLifecycleState.Suspended));
        source.Version = 2;
        await service.RefreshAsync(ct);
        Assert.Equal([-1L, 1L], source.LoadsSince);
        Assert.Equal((2, 2L), (cache.Count, cache.Version));
        Assert.True(cache.TryGet(CertificateHash.Of([1]), out var suspended));
        Assert.Equal(DeviceLifecycleState.Suspended, suspended.State);

        source.Fail = true;
        await service.RefreshAsync(ct);
        Assert.Equal((2, 2L), (cache.Count, cache.Version));
    }
}
