using System.Net;
using System.Net.Http.Json;
using KtZeroTrust.Pki.Attestation;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList.Redis;
using KtZeroTrust.Redis;
using KtZeroTrust.Registry.Redis;
using KtZeroTrust.Registry.Sqlite;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace KtZeroTrust.Server.Tests;

/// <summary>The change feed's liveness and re-subscription, against a real redis-server frozen, and its connections killed.</summary>
public sealed class RedisFeedTests(SlowTimeoutsRedisGatewayFixture pair) : IClassFixture<SlowTimeoutsRedisGatewayFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task FrozenRedis_IsNoticedByTheFeedProbe_KnownDevicesKeepBeingServed_ThenTheNodeResyncs()
    {
        var node = pair.NodeA;
        var redis = node.Services.GetRequiredService<GatewayRedis>();
        using var known = node.DeviceClient(node.SampleCertificate("FC-0001"));
        Assert.Equal(HttpStatusCode.OK, (await known.GetAsync(node.DeviceUri("/femto/status"), Ct)).StatusCode);
        Assert.True(redis.FeedConnected);
        var resyncsBefore = (await node.DecisionsAsync()).Count(d => d.Text("route") == "allow-list:resynchronised");

        await pair.Redis.PauseAsync(); // no reset, no error: the subscription just goes silent
        try
        {
            // Only the probe (a PING on the subscription, 3 s) can see this: the 60 s keep-alive and 30 s timeout cannot yet.
            await Eventually.Until(() => Task.FromResult(redis.FeedConnected), connected => !connected, "the frozen feed to be noticed", TimeSpan.FromSeconds(20));
            await node.DecisionAsync(d => d.Text("route") == "allow-list:feed-lost", "the feed-lost system decision");
            // Within MaxStaleness (30 s), a device the node knows is still served; one it has never seen is not looked up.
            Assert.Equal(HttpStatusCode.OK, (await known.GetAsync(node.DeviceUri("/femto/status"), Ct)).StatusCode);
            using var probe = node.DeviceClient(null);
            var ready = await DeviceGatewayTests.ReadinessAsync(probe, node.ConsolePort);
            Assert.Equal("degraded", ready.GetProperty("checks").GetProperty("allow-list").GetProperty("status").GetString());
        }
        finally
        {
            await pair.Redis.ResumeAsync();
        }

        await Eventually.Until(() => Task.FromResult(redis.FeedConnected), connected => connected, "the feed to come back", TimeSpan.FromSeconds(60));
        await Eventually.Until(async () => (await node.DecisionsAsync()).Count(d => d.Text("route") == "allow-list:resynchronised"), n => n > resyncsBefore, "the resync after the feed returned", TimeSpan.FromSeconds(60));
        Assert.Equal(HttpStatusCode.OK, (await known.GetAsync(node.DeviceUri("/femto/status"), Ct)).StatusCode);
    }

    [Fact]
    public async Task AfterEachReconnect_TheResubscriptionIsLive_SoARevocationPublishedAfterTheResyncArrives()
    {
        var node = pair.NodeB;
        await using var admin = new RedisConnection(pair.Redis.Configuration + ",allowAdmin=true");
        foreach (var serial in new[] { "FC-0003", "FC-0004", "FC-0005" })
        {
            using var device = node.DeviceClient(node.SampleCertificate(serial));
            Assert.Equal(HttpStatusCode.OK, (await device.GetAsync(node.DeviceUri("/femto/status"), Ct)).StatusCode);
            var resyncs = (await node.DecisionsAsync()).Count(d => d.Text("route") == "allow-list:resynchronised");

            // Every node's subscription connection is cut by the server; StackExchange.Redis reconnects and re-subscribes.
            var killed = await (await admin.DatabaseAsync()).ExecuteAsync("CLIENT", "KILL", "TYPE", "pubsub");
            Assert.True((long)killed > 0);
            await Eventually.Until(async () => (await node.DecisionsAsync()).Count(d => d.Text("route") == "allow-list:resynchronised"), n => n > resyncs, $"node B to resync after the cut ({serial})", TimeSpan.FromSeconds(60));

            // Published after the resync: only a live subscription can deliver it (the registry poll is an hour away).
            await pair.TransitionAsync(serial, DeviceLifecycleState.Revoked, "lost after reconnect test");
            var denied = await Eventually.Until(() => device.GetAsync(node.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.Forbidden, $"the revocation of {serial} to reach node B", TimeSpan.FromSeconds(30));
            await DeviceGatewayTests.AssertProblemAsync(denied, HttpStatusCode.Forbidden, "device_revoked");
        }
    }
}

/// <summary>
/// A gateway node on Redis with Sentinel: a primary, a replica and three Sentinels on loopback. The primary is killed
/// under traffic; the node follows the promoted replica.
/// </summary>
public sealed class RedisSentinelTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private readonly RedisSentinelFixture _redis = new();
    private readonly TempDirectory _shared = new("ktzt-sentinel-node");
    private ServerFixture _node = null!;

    public async ValueTask InitializeAsync()
    {
        await _redis.InitializeAsync();
        try
        {
            await StartNodeAsync();
        }
        catch
        {
            await _redis.DisposeAsync();
            throw;
        }
    }

    private async Task StartNodeAsync()
    {
        _node = new ServerFixture(_shared.Combine("pki"), _shared.Combine("registry.db"),
        [
            $"--ZeroTrust:AllowList:Redis={_redis.Configuration},connectTimeout=2000",
            "--ZeroTrust:AllowList:RegistryPollInterval=01:00:00",
            "--ZeroTrust:AllowList:MaxStaleness=00:02:00",
            $"--ZeroTrust:Console:Redis={_redis.Configuration}",
        ]);
        await _node.InitializeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _node.DisposeAsync();
        await _redis.DisposeAsync();
        _shared.Dispose();
    }

    [Fact]
    public async Task PrimaryKilledUnderTraffic_TheNodeFollowsThePromotedReplica_AndARevocationAfterTheFailoverReachesIt()
    {
        var redis = _node.Services.GetRequiredService<GatewayRedis>();
        using var known = _node.DeviceClient(_node.SampleCertificate("FC-0001"));
        using var revokedLater = _node.DeviceClient(_node.SampleCertificate("FC-0002"));
        Assert.Equal(HttpStatusCode.OK, (await known.GetAsync(_node.DeviceUri("/femto/status"), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await revokedLater.GetAsync(_node.DeviceUri("/femto/status"), Ct)).StatusCode);
        var oldPrimary = _redis.Primary.Port;

        using var stopTraffic = new CancellationTokenSource();
        var statuses = new List<HttpStatusCode>();
        var traffic = Task.Run(async () =>
        {
            while (!stopTraffic.IsCancellationRequested)
            {
                using var response = await known.GetAsync(_node.DeviceUri("/femto/status"), Ct);
                lock (statuses)
                {
                    statuses.Add(response.StatusCode);
                }

                await Task.Delay(50, Ct);
            }
        }, Ct);

        await _redis.Primary.StopAsync(); // kill -9
        await Eventually.Until(_redis.PrimaryPortAsync, port => port == _redis.Replica.Port, "the Sentinels to promote the replica", TimeSpan.FromSeconds(90));
        await Eventually.Until(() => Task.FromResult(redis.FeedConnected && IsOn(redis, _redis.Replica.Port)), ok => ok, "the node to follow the new primary", TimeSpan.FromSeconds(90));

        // A revocation made after the failover, written through the Sentinels to the new primary, reaches the node.
        await using var operatorRedis = new RedisConnection(_redis.Configuration);
        var sqlite = new SqliteDeviceRegistry(_node.RegistryPath, TimeProvider.System);
        using var synchronizer = new RegistryRedisSynchronizer(sqlite, new RedisAllowListStore(operatorRedis), TimeProvider.System);
        Exception? pushFailed = null;
        await new WriteThroughDeviceRegistry(sqlite, synchronizer, ex => pushFailed = ex).TransitionAsync("FC-0002", DeviceLifecycleState.Revoked, "test", "stolen after the failover", Ct);
        Assert.Null(pushFailed);
        var denied = await Eventually.Until(() => revokedLater.GetAsync(_node.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.Forbidden, "the revocation to reach the node", TimeSpan.FromSeconds(30));
        await DeviceGatewayTests.AssertProblemAsync(denied, HttpStatusCode.Forbidden, "device_revoked");

        await stopTraffic.CancelAsync();
        await traffic;
        lock (statuses)
        {
            Assert.NotEmpty(statuses);
            Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s)); // the known device was served throughout (within MaxStaleness)
        }

        Assert.NotEqual(oldPrimary, await _redis.PrimaryPortAsync());
    }

    [Fact]
    public async Task ASessionANonceAndTheDecisionStream_SurviveTheFailover()
    {
        // Before: a signed-in analyst, a nonce a unit holds, the decisions so far; replicated before the primary dies.
        var password = await _node.Services.GetRequiredService<KtZeroTrust.SocConsole.Accounts.ConsoleUsers>().AddAsync("on-call", KtZeroTrust.SocConsole.Accounts.ConsoleRoles.Analyst, TestContext.Current.CancellationToken);
        using var console = _node.ConsoleClient();
        using var login = await console.PostAsJsonAsync(_node.ConsoleUri("/api/login"), new { user = "on-call", password, newPassword = "on-call-password-1" }, Ct);
        login.EnsureSuccessStatusCode();
        var token = (await login.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(Ct)).GetProperty("token").GetString()!;
        using var factory = _node.FactoryCertificate("FC-0003");
        using var unit = new EnrollmentClient(_node, factory);
        var nonce = await unit.NonceAsync(Ct);

        await using var primary = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{_redis.Primary.Port}");
        var streamKey = KtZeroTrust.Monitoring.Sinks.RedisStreamSink.DefaultStreamKey;
        await Eventually.Until(async () => (long)await primary.GetDatabase().StreamLengthAsync(streamKey), n => n > 0, "the node's decisions in the stream");
        var before = await primary.GetDatabase().StreamLengthAsync(streamKey);
        Assert.Equal(1, (int)await primary.GetDatabase().ExecuteAsync("WAIT", 1, 5000)); // the replica has all of it

        await _redis.Primary.StopAsync(); // kill -9
        await Eventually.Until(_redis.PrimaryPortAsync, port => port == _redis.Replica.Port, "the Sentinels to promote the replica", TimeSpan.FromSeconds(90));

        // After: the analyst is still signed in, the unit's nonce still serves its attestation (once), nothing is lost from the stream.
        using var api = _node.ConsoleClient();
        api.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        await Eventually.Until(() => api.GetAsync(_node.ConsoleUri("/api/me"), Ct), r => r.StatusCode == HttpStatusCode.OK, "the session to be read from the promoted replica", TimeSpan.FromSeconds(90));
        var evidence = Evidence.Create(TestReference.HonestClaims("FC-0003", nonce), factory);
        using var attested = await Eventually.Until(() => unit.EvidenceAsync(evidence, Ct), r => r.StatusCode != HttpStatusCode.InternalServerError, "the nonce store to follow the failover", TimeSpan.FromSeconds(90));
        Assert.Equal(HttpStatusCode.OK, attested.StatusCode);
        using var replayed = await unit.EvidenceAsync(evidence, Ct);
        await DeviceGatewayTests.AssertProblemAsync(replayed, HttpStatusCode.Forbidden, "nonce_invalid");
        await using var promoted = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{_redis.Replica.Port}");
        Assert.True(await promoted.GetDatabase().StreamLengthAsync(streamKey) >= before);
    }

    private static bool IsOn(GatewayRedis redis, int port)
        => redis.Connection.Multiplexer is { } multiplexer
            && multiplexer.GetEndPoints().Select(e => multiplexer.GetServer(e)).Any(s => s.IsConnected && !s.IsReplica && ((IPEndPoint)s.EndPoint).Port == port);
}
