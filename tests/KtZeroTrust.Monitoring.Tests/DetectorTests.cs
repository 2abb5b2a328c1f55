using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Hosting.Devices;
using KtZeroTrust.Monitoring.Pipeline;
using System.Collections.Concurrent;
using StackExchange.Redis;
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Monitoring.Detectors;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Redis;
using KtZeroTrust.Registry.Sqlite;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.Logging.Abstractions;

namespace KtZeroTrust.Monitoring.Tests;

/// <summary>Collects what is posted (the detectors' alerts and lifecycle events).</summary>
internal sealed class PostedDecisions : IDecisionSink
{
    public ConcurrentQueue<DecisionEvent> Events { get; } = new();

    public void Post(DecisionEvent decision) => Events.Enqueue(decision);

    public List<DecisionEvent> Alerts(ReasonCode reason) => [.. Events.Where(e => e.Kind == DecisionKind.Alert && e.Reason == reason)];
}

/// <summary>The detectors over a real SQLite registry; the clock is moved by hand, events carry their own times.</summary>
public sealed class DetectorTests : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 22, 2, 0, 0, TimeSpan.Zero);
    private readonly TempDirectory _temp = new("detectors");
    private readonly ManualTimeProvider _clock = new(T0);
    private readonly PostedDecisions _posted = new();
    private SqliteDeviceRegistry _registry = null!;
    private int _id;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _registry = new SqliteDeviceRegistry(_temp.Combine("registry.db"), _clock);
        await _registry.ImportReferenceValuesAsync(new ReferenceValues
        {
            Sites = [new Site { Id = "site-1", Latitude = 37.5, Longitude = 127.0, RadiusMeters = 5000, AllowedPrefixes = ["10.1.0.0/16", "127.0.0.0/8"] }],
        }, "test", Ct);
        await _registry.ImportAsync([new ManifestDevice { Serial = "FC-1", Model = "M1", Site = "site-1" }, new ManifestDevice { Serial = "FC-2", Model = "M1", Site = "site-1" }], "test", Ct);
        foreach (var serial in new[] { "FC-1", "FC-2" })
        {
            await _registry.TransitionAsync(serial, DeviceLifecycleState.Active, "test", "enrolled", Ct);
        }
    }

    public ValueTask DisposeAsync()
    {
        _temp.Dispose();
        return ValueTask.CompletedTask;
    }

    private DetectorService Detectors(DetectorOptions? options = null, string state = "detectors.json")
    {
        options ??= new DetectorOptions();
        return new DetectorService(new DetectorEngine(options, _registry, _clock), new FileDetectorStateStore(_temp.Combine(state)), _posted, new DecisionFactory("test-node", _clock),
            new DeviceQuarantine(_posted, new DecisionFactory("test-node", _clock), NullLogger<DeviceQuarantine>.Instance, _registry), options, _clock, NullLogger<DetectorService>.Instance);
    }

    private DecisionEvent Access(string serial, string source, TimeSpan at, DecisionOutcome outcome = DecisionOutcome.Allow, string node = "gw-1") => new()
    {
        Id = $"E{Interlocked.Increment(ref _id):D8}",
        Time = T0 + at,
        Listener = DecisionListener.Device,
        Subject = serial,
        SourceAddress = source,
        Method = "GET",
        Path = "/femto/config",
        Route = "femto",
        Outcome = outcome,
        Reason = outcome == DecisionOutcome.Allow ? ReasonCode.Allowed : ReasonCode.DeviceUnknown,
        Node = node,
    };

    [Fact]
    public async Task Clone_OneIdentityThroughTwoNodesFromTwoAddresses_IsAlerted_AndTheDeviceSuspended()
    {
        var detectors = Detectors();
        await detectors.ProcessAsync([Access("FC-1", "10.1.0.5", TimeSpan.Zero, node: "gw-1"), Access("FC-1", "10.1.0.5", TimeSpan.FromSeconds(30), node: "gw-1")], null, Ct);
        Assert.Empty(_posted.Events);

        await detectors.ProcessAsync([Access("FC-1", "10.1.9.9", TimeSpan.FromSeconds(60), node: "gw-2")], null, Ct);

        var alert = Assert.Single(_posted.Alerts(ReasonCode.CloneSuspected));
        Assert.Equal(("FC-1", "10.1.9.9", "detector:clone"), (alert.Subject, alert.SourceAddress, alert.Route));
        Assert.Contains("gw-1 and gw-2", alert.Detail, StringComparison.Ordinal);
        Assert.Equal(DeviceLifecycleState.Suspended, (await _registry.FindAsync("FC-1", Ct))!.State);
        Assert.Contains(_posted.Events, e => e.Kind == DecisionKind.Lifecycle && e.Subject == "FC-1" && e.Reason == ReasonCode.LifecycleTransition);
        Assert.Equal("detector:clone", (await _registry.GetHistoryAsync("FC-1", Ct))[^1].Actor);

        // The same pair again within the window: no second alert. Another device far apart in time: none either.
        await detectors.ProcessAsync([Access("FC-1", "10.1.0.5", TimeSpan.FromSeconds(90)), Access("FC-2", "10.1.0.6", TimeSpan.Zero), Access("FC-2", "10.1.0.7", TimeSpan.FromMinutes(6))], null, Ct);
        Assert.Single(_posted.Alerts(ReasonCode.CloneSuspected));
        Assert.Equal(DeviceLifecycleState.Active, (await _registry.FindAsync("FC-2", Ct))!.State);
    }

    [Fact]
    public async Task Clone_AlreadyRaisedByTheGateway_IsNotRaisedTwice_AndLoopbackAliasesAreOneHost()
    {
        var detectors = Detectors();
        await detectors.ProcessAsync([
            Access("FC-1", "127.0.0.1", TimeSpan.Zero),
            Access("FC-1", "::1", TimeSpan.FromSeconds(1)),
            Access("FC-1", "::ffff:127.0.0.1", TimeSpan.FromSeconds(2)),
            new DecisionEvent { Id = "G1", Time = T0 + TimeSpan.FromSeconds(3), Kind = DecisionKind.Alert, Listener = DecisionListener.Device, Subject = "FC-1", Route = "detector:clone", Outcome = DecisionOutcome.Deny, Reason = ReasonCode.CloneSuspected },
            Access("FC-1", "10.1.4.4", TimeSpan.FromSeconds(4)),
        ], null, Ct);
        Assert.Empty(_posted.Alerts(ReasonCode.CloneSuspected));
    }

    [Fact]
    public async Task Idle_ActiveUnitsUnseenBeyondTheLimit_AreAlertedAndSuspended_SeenOnesAreNot()
    {
        var detectors = Detectors(new DetectorOptions { Idle = { After = TimeSpan.FromDays(30) } });
        _clock.Advance(TimeSpan.FromDays(29));
        await detectors.ProcessAsync([Access("FC-2", "10.1.0.9", TimeSpan.FromDays(29))], null, Ct);
        await detectors.SweepAsync(Ct);
        Assert.Empty(_posted.Events); // 29 days: within the limit

        _clock.Advance(TimeSpan.FromDays(2)); // 31 days since FC-1 enrolled; FC-2 was seen 2 days ago
        await detectors.SweepAsync(Ct);
        var alert = Assert.Single(_posted.Alerts(ReasonCode.DeviceIdle));
        Assert.Equal("FC-1", alert.Subject);
        Assert.Contains("31 days", alert.Detail, StringComparison.Ordinal);
        Assert.Equal(DeviceLifecycleState.Suspended, (await _registry.FindAsync("FC-1", Ct))!.State);
        Assert.Equal(DeviceLifecycleState.Active, (await _registry.FindAsync("FC-2", Ct))!.State);

        await detectors.SweepAsync(Ct); // suspended now: not raised again
        Assert.Single(_posted.Alerts(ReasonCode.DeviceIdle));
    }

    [Fact]
    public async Task SourcePrefix_AnAllowedRequestFromOutsideTheSitesPrefixes_IsAlerted_OncePerPeriod()
    {
        var detectors = Detectors();
        await detectors.ProcessAsync([Access("FC-1", "10.1.200.3", TimeSpan.Zero), Access("FC-2", "127.0.0.1", TimeSpan.Zero)], null, Ct);
        Assert.Empty(_posted.Events);

        await detectors.ProcessAsync([Access("FC-1", "198.51.100.7", TimeSpan.FromHours(1)), Access("FC-1", "198.51.100.7", TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1))], null, Ct);
        var alert = Assert.Single(_posted.Alerts(ReasonCode.SourceOutsidePrefixes));
        Assert.Equal(("FC-1", "198.51.100.7"), (alert.Subject, alert.SourceAddress));
        Assert.Contains("10.1.0.0/16", alert.Detail, StringComparison.Ordinal);
        Assert.Equal(DeviceLifecycleState.Active, (await _registry.FindAsync("FC-1", Ct))!.State); // alert only, by default
    }

    [Fact]
    public async Task LocationDrift_ReAttestationFarFromThePreviousPosition_IsAlerted()
    {
        var detectors = Detectors();
        AttestationRecord Attested(string id, double latitude, TimeSpan at) => new()
        {
            Id = id, Serial = "FC-1", Nonce = id, Passed = true, Latitude = latitude, Longitude = 127.0, At = T0 + at, ExpiresAt = T0 + at + TimeSpan.FromMinutes(5),
        };
        DecisionEvent AttestationEvent(TimeSpan at) => new()
        {
            Id = $"A{Interlocked.Increment(ref _id)}", Time = T0 + at, Kind = DecisionKind.Attestation, Listener = DecisionListener.Enrollment, Subject = "FC-1",
            Route = "attestation", Method = "POST", Outcome = DecisionOutcome.Allow, Reason = ReasonCode.Allowed,
        };

        await _registry.RecordAttestationAsync(Attested("a1", 37.5, TimeSpan.Zero), Ct);
        await detectors.ProcessAsync([AttestationEvent(TimeSpan.Zero)], null, Ct);
        await _registry.RecordAttestationAsync(Attested("a2", 37.5001, TimeSpan.FromDays(1)), Ct); // ~11 m
        await detectors.ProcessAsync([AttestationEvent(TimeSpan.FromDays(1))], null, Ct);
        Assert.Empty(_posted.Events);

        await _registry.RecordAttestationAsync(Attested("a3", 37.52, TimeSpan.FromDays(2)), Ct); // ~2.2 km: still inside the 5 km site
        var replayed = AttestationEvent(TimeSpan.FromDays(2));
        await detectors.ProcessAsync([replayed, replayed], null, Ct); // delivered twice (at least once): one alert
        var alert = Assert.Single(_posted.Alerts(ReasonCode.LocationDrift));
        Assert.Contains("moved 22", alert.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DenialBurst_ThresholdDenialsFromOneSourceWithinTheWindow_IsOneAlert()
    {
        var detectors = Detectors(new DetectorOptions { DenialBurst = { Threshold = 20, Window = TimeSpan.FromMinutes(1) } });
        // 19 within a minute, then a pause: nothing.
        await detectors.ProcessAsync([.. Enumerable.Range(0, 19).Select(i => Access("ROGUE-1", "203.0.113.9", TimeSpan.FromSeconds(i), DecisionOutcome.Deny))], null, Ct);
        await detectors.ProcessAsync([Access("ROGUE-1", "203.0.113.9", TimeSpan.FromMinutes(5), DecisionOutcome.Deny)], null, Ct);
        Assert.Empty(_posted.Events);

        // 30 within 15 s: one alert, not ten.
        await detectors.ProcessAsync([.. Enumerable.Range(0, 30).Select(i => Access("ROGUE-1", "203.0.113.9", TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(i / 2.0), DecisionOutcome.Deny))], null, Ct);
        var alert = Assert.Single(_posted.Alerts(ReasonCode.DenialBurst));
        Assert.Equal("203.0.113.9", alert.SourceAddress);
        Assert.DoesNotContain(_posted.Events, e => e.Kind == DecisionKind.Lifecycle);
    }

    [Fact]
    public async Task State_SurvivesARestart_AndAnUnreadableSnapshotStartsEmpty()
    {
        var first = Detectors();
        await first.ProcessAsync([Access("FC-1", "10.1.0.5", TimeSpan.Zero)], null, Ct);
        await first.SaveAsync(Ct);

        var second = Detectors(); // a new process: same state file
        await second.ProcessAsync([Access("FC-1", "10.1.7.7", TimeSpan.FromSeconds(20))], null, Ct);
        Assert.Single(_posted.Alerts(ReasonCode.CloneSuspected));

        await File.WriteAllTextAsync(_temp.Combine("broken.json"), "{ not json", Ct);
        var third = Detectors(state: "broken.json");
        await third.ProcessAsync([Access("FC-2", "10.1.0.5", TimeSpan.Zero)], null, Ct); // no throw: logged, empty state
        Assert.Equal(1, third.Engine.TrackedDevices);
    }
}

/// <summary>Redis mode: the nodes' shared stream, one leader at a time, state handed over through Redis.</summary>
public sealed class RedisDetectorTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task OneLeaderReadsTheSharedStream_AndTheNextTakesOverFromItsSavedPosition()
    {
        using var temp = new TempDirectory();
        var registry = new SqliteDeviceRegistry(temp.Combine("registry.db"), TimeProvider.System);
        await registry.ImportAsync([new ManifestDevice { Serial = "FC-1", Model = "M1" }, new ManifestDevice { Serial = "FC-2", Model = "M1" }], "test", Ct);
        var suffix = Guid.NewGuid().ToString("N");
        var (stream, lease, stateKey) = ($"zt:decisions:{suffix}", $"zt:detectors:leader:{suffix}", $"zt:detectors:state:{suffix}");
        await using var client = new RedisConnection(redis.Configuration);
        var options = new DetectorOptions { SnapshotInterval = TimeSpan.FromMilliseconds(100) };
        var posted = new PostedDecisions();

        (DetectorService Service, CancellationTokenSource Stop) Node(string name)
        {
            var service = new DetectorService(new DetectorEngine(options, registry, TimeProvider.System), new RedisDetectorStateStore(client, stateKey), posted, new DecisionFactory(name, TimeProvider.System),
                new DeviceQuarantine(posted, new DecisionFactory(name, TimeProvider.System), NullLogger<DeviceQuarantine>.Instance, registry), options, TimeProvider.System,
                NullLogger<DetectorService>.Instance,
                new RedisStreamDetectorFeed(client, stream, name, options, TimeProvider.System, NullLogger<RedisStreamDetectorFeed>.Instance, lease, TimeSpan.FromSeconds(1)));
            return (service, new CancellationTokenSource());
        }

        var a = Node("gw-a");
        var b = Node("gw-b");
        await a.Service.StartAsync(Ct);
        await Eventually.Until(() => a.Service.Active, "gw-a to lead");
        await b.Service.StartAsync(Ct);

        var now = DateTimeOffset.UtcNow;
        JournaledDecision Allowed(string serial, string source, string node, int second) => JournaledDecision.Of(new DecisionEvent
        {
            Id = Guid.NewGuid().ToString("N"), Time = now.AddSeconds(second), Listener = DecisionListener.Device, Subject = serial, SourceAddress = source, Method = "GET", Path = "/",
            Outcome = DecisionOutcome.Allow, Reason = ReasonCode.Allowed, Node = node,
        });
        var sink = new RedisStreamSink(client, stream);
        await sink.WriteBatchAsync([Allowed("FC-1", "10.0.0.1", "gw-a", 0), Allowed("FC-1", "10.0.0.2", "gw-b", 1)], Ct); // through two nodes
        await Eventually.Until(() => posted.Alerts(ReasonCode.CloneSuspected).Count == 1, "the clone seen across nodes");
        await Eventually.Until(() => a.Service.Observed == 2, "gw-a to count both entries");
        Assert.False(b.Service.Active);
        Assert.Equal(0, b.Service.Observed); // each entry judged once, by the leader

        await sink.WriteBatchAsync([Allowed("FC-2", "10.0.0.3", "gw-a", 2)], Ct);
        await Eventually.Until(() => a.Service.Observed == 3, "gw-a to read FC-2's first sighting");
        await a.Service.StopAsync(Ct); // saves the state and hands the lease over

        await Eventually.Until(() => b.Service.Active, "gw-b to take over");
        await sink.WriteBatchAsync([Allowed("FC-2", "10.0.0.4", "gw-b", 3)], Ct);
        await Eventually.Until(() => posted.Alerts(ReasonCode.CloneSuspected).Count == 2, "gw-b to see FC-2's clone using gw-a's state");
        await Eventually.Until(() => b.Service.Observed >= 1, "gw-b to count the entry");
        Assert.Equal(1, b.Service.Observed); // resumed after gw-a's position: nothing judged twice
        Assert.Single(posted.Alerts(ReasonCode.CloneSuspected), e => e.Subject == "FC-1");
        await b.Service.StopAsync(Ct);
    }
}
