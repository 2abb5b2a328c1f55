using StackExchange.Redis;
using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Redis;
using KtZeroTrust.Registry.Redis;
using KtZeroTrust.Registry.Sqlite;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Registry.Tests;

/// <summary>The registry's write-through to a real redis-server: versioned writes, pushed changes, catch-up sync.</summary>
public sealed class RedisAllowListStoreTests(RedisServerFixture server) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private readonly TempDirectory _temp = new();
    private readonly string _prefix = $"t{Guid.NewGuid():N}:";
    private RedisConnection _redis = null!;
    private RedisConnection _subscriber = null!;

    public ValueTask InitializeAsync()
    {
        _redis = new RedisConnection(server.Configuration);
        _subscriber = new RedisConnection(server.Configuration); // another node's multiplexer
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _subscriber.DisposeAsync();
        await _redis.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _temp.Dispose();
    }

    private static AllowListEntry Entry(long version, DeviceLifecycleState state, byte id = 1) => new()
    {
        CertificateHash = CertificateHash.Of([id]),
        DeviceSerial = "FC-" + id,
        State = state,
        NotBeforeUtcTicks = DateTime.UtcNow.AddHours(-1).Ticks,
        NotAfterUtcTicks = DateTime.UtcNow.AddDays(1).Ticks,
        Version = version,
    };

    [Fact]
    public async Task Write_KeepsTheNewestVersion_WhicheverWriterComesLast()
    {
        var store = new RedisAllowListStore(_redis, _prefix);
        Assert.Equal(1, await store.WriteAsync([Entry(7, DeviceLifecycleState.Revoked)], DateTimeOffset.UtcNow, Ct));
        // A slow reader filling a miss with what it read before the revocation must not undo it.
        Assert.Equal(0, await store.WriteAsync([Entry(6, DeviceLifecycleState.Active)], DateTimeOffset.UtcNow, Ct));
        var stored = await store.GetAsync(CertificateHash.Of([1]), Ct);
        Assert.Equal((DeviceLifecycleState.Revoked, 7L), (stored!.State, stored.Version));
        var ttl = await (await _redis.DatabaseAsync()).KeyTimeToLiveAsync(store.KeyOf(CertificateHash.Of([1])));
        Assert.InRange(ttl!.Value, TimeSpan.FromDays(1), TimeSpan.FromDays(2.1));
        Assert.Null(await store.GetAsync(CertificateHash.Of([99]), Ct));
    }

    [Fact]
    public async Task Sync_PushesExactlyWhatChanged_ToSubscribers_AndRecordsTheVersion()
    {
        var sqlite = new SqliteDeviceRegistry(_temp.Combine("registry.db"), TimeProvider.System);
        var store = new RedisAllowListStore(_redis, _prefix);
        var received = new System.Collections.Concurrent.ConcurrentQueue<AllowListEntry>();
        await (await _subscriber.ConnectAsync()).GetSubscriber().SubscribeAsync(RedisChannel.Literal(store.Channel), (_, m) => { foreach (var e in AllowListEntryCodec.DecodeBatch((byte[])m!)) { received.Enqueue(e); } });
        using var synchronizer = new RegistryRedisSynchronizer(sqlite, store, TimeProvider.System);
        var failures = new List<Exception>();
        var registry = new WriteThroughDeviceRegistry(sqlite, synchronizer, failures.Add);

        await registry.ImportAsync([new ManifestDevice { Serial = "FC-1", Model = "M" }, new ManifestDevice { Serial = "FC-2", Model = "M" }], "test", Ct);
        var c1 = Certificate("FC-1");
        var c2 = Certificate("FC-2");
        await registry.AddCertificateAsync(c1, "test", Ct);
        await registry.AddCertificateAsync(c2, "test", Ct);
        await registry.TransitionAsync("FC-2", DeviceLifecycleState.Suspended, "soc", "investigating", Ct);

        Assert.Empty(failures);
        Assert.Equal(await sqlite.GetVersionAsync(Ct), await store.GetSyncedVersionAsync(Ct));
        var suspended = await store.GetAsync(CertificateHash.Parse(c2.Sha256), Ct);
        Assert.Equal(DeviceLifecycleState.Suspended, suspended!.State);
        await Eventually.Until(() => Task.FromResult(received.Count(e => e.DeviceSerial == "FC-2")), n => n == 2, "the add and the suspension of FC-2 to be pushed");
        Assert.Single(received, e => e.DeviceSerial == "FC-1"); // pushed once: later syncs send only what changed
        Assert.Equal(0, await synchronizer.SyncAsync(Ct));
    }

    [Fact]
    public async Task WriteThrough_WithRedisDown_CommitsAndReports_ThenSyncCatchesUp()
    {
        var sqlite = new SqliteDeviceRegistry(_temp.Combine("down.db"), TimeProvider.System);
        await sqlite.ImportAsync([new ManifestDevice { Serial = "FC-3", Model = "M" }], "test", Ct);
        var cert = Certificate("FC-3");
        await sqlite.AddCertificateAsync(cert, "test", Ct);

        var deadOptions = RedisConfiguration.Parse($"127.0.0.1:{FreePorts.Next()},abortConnect=false,connectTimeout=200");
        await using var dead = new RedisConnection(deadOptions);
        using var deadSync = new RegistryRedisSynchronizer(sqlite, new RedisAllowListStore(dead, _prefix), TimeProvider.System);
        var failures = new List<Exception>();
        await new WriteThroughDeviceRegistry(sqlite, deadSync, failures.Add).TransitionAsync("FC-3", DeviceLifecycleState.Revoked, "soc", "stolen", Ct);
        Assert.IsType<RedisConnectionException>(Assert.Single(failures));
        Assert.Equal(DeviceLifecycleState.Revoked, (await sqlite.FindAsync("FC-3", Ct))!.State); // committed all the same

        var store = new RedisAllowListStore(_redis, _prefix);
        using var liveSync = new RegistryRedisSynchronizer(sqlite, store, TimeProvider.System);
        Assert.Equal(1, await liveSync.SyncAsync(Ct));
        Assert.Equal(DeviceLifecycleState.Revoked, (await store.GetAsync(CertificateHash.Parse(cert.Sha256), Ct))!.State);
    }

    private static DeviceCertificateRecord Certificate(string serial) => new()
    {
        Sha256 = CertificateHash.Of(Guid.NewGuid().ToByteArray()).ToString(),
        DeviceSerial = serial,
        CertificateSerialNumber = "01",
        NotBefore = DateTimeOffset.UtcNow.AddMinutes(-1),
        NotAfter = DateTimeOffset.UtcNow.AddDays(1),
        IssuedAt = DateTimeOffset.UtcNow,
        PublicKeySha256 = CertificateHash.Of(Guid.NewGuid().ToByteArray()).ToString(),
    };
}
