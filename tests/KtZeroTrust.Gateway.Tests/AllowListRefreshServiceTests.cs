using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Gateway.Tests;

public sealed class AllowListRefreshServiceTests
{
    private sealed class Source : IAllowListSource
    {
        public long Version { get; set; } = 1;
        public bool Fail { get; set; }
        public int Loads { get; private set; }
        public List<AllowListEntry> Entries { get; } = [];

        public Task<long> GetVersionAsync(CancellationToken cancellationToken = default)
            => Fail ? throw new IOException("registry unreachable") : Task.FromResult(Version);

        public Task<IReadOnlyList<AllowListEntry>> LoadAllowListAsync(CancellationToken cancellationToken = default)
        {
            Loads++;
            return Task.FromResult<IReadOnlyList<AllowListEntry>>(Entries.ToList());
        }
    }

    private static AllowListEntry Entry(byte b) => new() { CertificateHash = CertificateHash.Of([b]), DeviceSerial = "D" + b, State = DeviceLifecycleState.Active, NotBeforeUtcTicks = 0, NotAfterUtcTicks = long.MaxValue };

    [Fact]
    public async Task Refresh_ReloadsOnlyWhenVersionChanges_AndKeepsLastSnapshotWhenSourceFails()
    {
        var source = new Source();
        source.Entries.Add(Entry(1));
        var cache = new AllowListCache();
        var service = new AllowListRefreshService(source, cache, Options.Create(new DeviceGatewayOptions()), TimeProvider.System, NullLogger<AllowListRefreshService>.Instance);
        var ct = TestContext.Current.CancellationToken;

        await service.RefreshAsync(force: true, ct);
        await service.RefreshAsync(force: false, ct);
        Assert.Equal((1, 1L, 1), (cache.Count, cache.Version, source.Loads));

        source.Entries.Add(Entry(2));
        source.Version = 2;
        await service.RefreshAsync(force: false, ct);
        Assert.Equal((2, 2L), (cache.Count, cache.Version));

        source.Fail = true;
        await service.RefreshAsync(force: false, ct);
        Assert.Equal((2, 2L), (cache.Count, cache.Version));
        Assert.True(cache.TryGet(CertificateHash.Of([2]), out _));
    }
}
