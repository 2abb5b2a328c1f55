using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Attestation.Nonces;
using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Registry.Redis;
using KtZeroTrust.Tests.Common;
using StackExchange.Redis;

namespace KtZeroTrust.Redis.Tests;

public sealed class RedisAuthTests(PasswordRedisServerFixture server) : IClassFixture<PasswordRedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Password_ForTheDefaultUser_Authenticates()
    {
        await using var redis = new RedisConnection($"{server.Configuration},password={PasswordRedisServerFixture.DefaultPassword}");
        await (await redis.DatabaseAsync()).PingAsync();
        Assert.True(redis.IsConnected);
    }

    [Theory]
    [InlineData("resp2")]
    [InlineData("resp3")]
    public async Task AclUser_Authenticates_AndIsLimitedToItsKeys(string protocol)
    {
        await using var redis = new RedisConnection(
            $"{server.Configuration},user={PasswordRedisServerFixture.AclUser},password={PasswordRedisServerFixture.AclPassword},protocol={protocol}");
        var db = await redis.DatabaseAsync();
        Assert.True(await db.StringSetAsync("zt:acl-test", "ok"));
        var ex = await Assert.ThrowsAsync<RedisServerException>(() => db.StringSetAsync("other:key", "no"));
        Assert.StartsWith("NOPERM", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(",user=gateway,password=wrong")]
    [InlineData("")]
    public async Task WrongOrNoPassword_IsNeverConnected_AndCommandsFailAtOnce(string credentials)
    {
        await using var redis = new RedisConnection($"{server.Configuration}{credentials},connectTimeout=2000,commandTimeout=600000");
        var db = await redis.DatabaseAsync(); // abortConnect=false: the multiplexer comes back, unconnected
        Assert.False(redis.IsConnected);
        // Fail fast: no backlog, so the 10-minute command timeout is never what ends the call.
        var ex = await Assert.ThrowsAsync<RedisConnectionException>(() => db.PingAsync().WaitAsync(TimeSpan.FromSeconds(60), Ct));
        Assert.Contains("No connection is active/available", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LockedDownProductUser_RunsEveryFeature_AndNothingElse()
    {
        await using var redis = new RedisConnection(
            $"{server.Configuration},user={PasswordRedisServerFixture.ProductUser},password={PasswordRedisServerFixture.ProductPassword}");
        var db = await redis.DatabaseAsync();
        Assert.True(redis.IsConnected);

        // The allow list: versioned writes (Lua), reads, the change feed.
        var store = new RedisAllowListStore(redis);
        var entry = new AllowListEntry
        {
            CertificateHash = CertificateHash.Of(Guid.NewGuid().ToByteArray()),
            DeviceSerial = "FC-ACL",
            State = DeviceLifecycleState.Active,
            NotBeforeUtcTicks = DateTime.UtcNow.AddHours(-1).Ticks,
            NotAfterUtcTicks = DateTime.UtcNow.AddDays(1).Ticks,
            Version = 7,
        };
        var pushed = new TaskCompletionSource<AllowListEntry>(TaskCreationOptions.RunContinuationsAsynchronously);
        var subscriber = (await redis.ConnectAsync()).GetSubscriber();
        await subscriber.SubscribeAsync(RedisChannel.Literal(store.Channel), (_, m) => pushed.TrySetResult(AllowListEntryCodec.DecodeBatch((byte[])m!)[0]));
        await subscriber.PingAsync();
        Assert.Equal(1, await store.WriteAsync([entry], DateTimeOffset.UtcNow, Ct));
        await store.PublishAsync([entry], Ct);
        await store.RaiseSyncedVersionAsync(7, Ct);
        Assert.Equal(7, await store.GetSyncedVersionAsync(Ct));
        Assert.Equal("FC-ACL", (await store.GetAsync(entry.CertificateHash, Ct))!.DeviceSerial);
        Assert.Equal("FC-ACL", (await pushed.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct)).DeviceSerial);

        // Nonces, the decision stream (MULTI/EXEC), and reading it back.
        var nonces = new RedisNonceStore(redis);
        Assert.Equal("FC-ACL", await nonces.ConsumeAsync(await nonces.IssueAsync("FC-ACL", TimeSpan.FromMinutes(1), Ct), Ct));
        var stream = "zt:decisions:acl";
        await new RedisStreamSink(redis, stream).WriteBatchAsync([Monitoring.DecisionLog.JournaledDecision.Of(new Core.Decisions.DecisionEvent
        {
            Id = "ID-ACL",
            Time = DateTimeOffset.UtcNow,
            Listener = Core.Decisions.DecisionListener.Device,
            Outcome = Core.Decisions.DecisionOutcome.Allow,
            Reason = Core.Decisions.ReasonCode.Allowed,
        })], Ct);
        Assert.Single(await db.StreamRangeAsync(stream));

        // Outside its keys and commands: refused.
        Assert.StartsWith("NOPERM", (await Assert.ThrowsAsync<RedisServerException>(() => db.StringSetAsync("other:key", "x"))).Message, StringComparison.Ordinal);
        Assert.StartsWith("NOPERM", (await Assert.ThrowsAsync<RedisServerException>(() => db.SetAddAsync("zt:a-set", "x"))).Message, StringComparison.Ordinal);
        Assert.StartsWith("NOPERM", (await Assert.ThrowsAsync<RedisServerException>(() => db.ExecuteAsync("HGETALL", "zt:al:version"))).Message, StringComparison.Ordinal);
    }
}

public sealed class RedisTlsTests(TlsRedisServerFixture server) : IClassFixture<TlsRedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Tls_WithTheServersCa_RoundTripsCommandsAndPubSub()
    {
        await using var redis = new RedisConnection(server.Configuration);
        var db = await redis.DatabaseAsync();
        await db.StringSetAsync("tls:key", new byte[] { 1, 2, 3 });
        Assert.Equal(new byte[] { 1, 2, 3 }, (byte[]?)await db.StringGetAsync("tls:key"));

        var got = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var subscriber = (await redis.ConnectAsync()).GetSubscriber();
        await subscriber.SubscribeAsync(RedisChannel.Literal("tls:channel"), (_, m) => got.TrySetResult(m.ToString()));
        await db.PublishAsync(RedisChannel.Literal("tls:channel"), "over tls");
        Assert.Equal("over tls", await got.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct));
    }

    [Theory]
    [InlineData("another CA", "localhost")]
    [InlineData("the server's CA", "redis.elsewhere")] // right CA, wrong name
    public async Task Tls_NotTrustedByTheConfiguredCa_IsNeverConnected(string ca, string sslHost)
    {
        using var dir = new TempDirectory();
        var caFile = server.CaFile;
        if (ca == "another CA")
        {
            caFile = Path.Combine(dir.Path, "other-ca.pem");
            File.WriteAllText(caFile, TestCertificates.CreateCa("CN=Other CA").Certificate.ExportCertificatePem());
        }

        await using var redis = new RedisConnection($"{server.Host}:{server.Port},ssl=true,sslHost={sslHost},sslCaFile={caFile},connectTimeout=3000");
        var db = await redis.DatabaseAsync();
        Assert.False(redis.IsConnected);
        await Assert.ThrowsAsync<RedisConnectionException>(() => db.PingAsync());
    }

    [Fact]
    public async Task PlainTextToATlsPort_DoesNotHang()
    {
        await using var redis = new RedisConnection($"{server.Host}:{server.Port},connectTimeout=2000,commandTimeout=500");
        // Redis drops a client that does not start TLS; either way the caller gets an error, never a hang.
        var attempt = Task.Run(async () => await (await redis.DatabaseAsync()).PingAsync(), Ct);
        await Assert.ThrowsAnyAsync<Exception>(() => attempt.WaitAsync(TimeSpan.FromSeconds(60), Ct));
        Assert.False(redis.IsConnected);
    }
}
