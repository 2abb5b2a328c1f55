using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Store;
using KtZeroTrust.Tests.Common;
using Npgsql;

namespace KtZeroTrust.Monitoring.Tests;

/// <summary>What both engines must do: the same writes, the same answers.</summary>
public abstract class DecisionStoreContract
{
    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly DateTimeOffset T0 = new(2026, 11, 30, 23, 58, 0, TimeSpan.Zero);

    protected abstract Task<SqlDecisionStore> NewStoreAsync();

    internal static DecisionEvent Decision(int i, string subject = "FC-0001", DecisionOutcome outcome = DecisionOutcome.Allow, ReasonCode reason = ReasonCode.Allowed,
        DecisionKind kind = DecisionKind.Access, DecisionListener listener = DecisionListener.Device, string node = "gw-1", DateTimeOffset? at = null) => new()
    {
        Id = $"D{node}{i:D20}",
        Time = at ?? T0.AddSeconds(i),
        Kind = kind,
        Listener = listener,
        Subject = subject,
        SourceAddress = $"10.0.{i % 250}.1",
        Route = "femto",
        Outcome = outcome,
        Reason = reason,
        Node = node,
    };

    protected static JournaledDecision[] Journal(long firstSequence, params DecisionEvent[] events) => JournaledDecision.Serialize(events, firstSequence);

    [Fact]
    public async Task Queries_FindByDevice_ByDenialReason_Alerts_AndTime_NewestFirst()
    {
        var store = await NewStoreAsync();
        var events = new List<DecisionEvent>();
        for (var i = 0; i < 300; i++)
        {
            events.Add(Decision(i, subject: $"FC-{i % 3:D4}"));
        }

        events.Add(Decision(300, subject: "FC-0002", outcome: DecisionOutcome.Deny, reason: ReasonCode.CloneSuspected));
        events.Add(Decision(301, subject: "FC-0002", outcome: DecisionOutcome.Deny, reason: ReasonCode.DeviceRevoked));
        events.Add(Decision(302, subject: "FC-0002", outcome: DecisionOutcome.Deny, reason: ReasonCode.CloneSuspected, kind: DecisionKind.Alert, listener: DecisionListener.Detector));
        events.Add(Decision(303, subject: "alice", listener: DecisionListener.User));
        await store.WriteAsync(Journal(1, [.. events]), Ct);

        var device = await store.QueryAsync(new DecisionFilter { Devices = ["FC-0002"], Limit = 1000 }, Ct);
        Assert.Equal(103, device.Count);
        Assert.Equal(302, int.Parse(device[0].Event.Id[^20..], System.Globalization.CultureInfo.InvariantCulture)); // newest first
        Assert.True(device.Zip(device.Skip(1)).All(p => p.First.Event.Time >= p.Second.Event.Time));
        Assert.Equal(events[302], device[0].Event); // the stored JSON reads back as the event

        var clones = await store.QueryAsync(new DecisionFilter { Outcome = DecisionOutcome.Deny, Reason = "clone_suspected" }, Ct);
        Assert.Equal([events[302].Id, events[300].Id], clones.Select(c => c.Event.Id));
        Assert.Single(await store.QueryAsync(new DecisionFilter { Kind = "alert" }, Ct));
        Assert.Single(await store.QueryAsync(new DecisionFilter { User = "alice" }, Ct));
        Assert.Empty(await store.QueryAsync(new DecisionFilter { Devices = ["alice"] }, Ct)); // a user is not a device
        Assert.Empty(await store.QueryAsync(new DecisionFilter { Kind = "no-such-kind" }, Ct));

        var window = await store.QueryAsync(new DecisionFilter { Since = T0.AddSeconds(10), Until = T0.AddSeconds(19), Limit = 5 }, Ct);
        Assert.Equal(Enumerable.Range(15, 5).Reverse().Select(i => events[i].Id), window.Select(w => w.Event.Id));
    }

    [Fact]
    public async Task AReplayedBatch_IsStoredOnce_AndCountedOnce()
    {
        var store = await NewStoreAsync();
        var batch = Journal(1, [.. Enumerable.Range(0, 100).Select(i => Decision(i, outcome: i % 4 == 0 ? DecisionOutcome.Deny : DecisionOutcome.Allow,
            reason: i % 4 == 0 ? ReasonCode.DeviceUnknown : ReasonCode.Allowed))]);
        await store.WriteAsync(batch, Ct);
        await store.WriteAsync(batch[50..], Ct); // a crash before the checkpoint: the journal replays the tail
        await store.WriteAsync(batch, Ct);

        Assert.Equal(100, (await store.QueryAsync(new DecisionFilter { Limit = 1000 }, Ct)).Count);
        var counts = await store.CountAsync(T0.AddHours(-1), T0.AddHours(1), TimeSpan.FromHours(1), Ct);
        Assert.Equal(75, counts.Where(c => c.Outcome == DecisionOutcome.Allow).Sum(c => c.Count));
        Assert.Equal(25, counts.Single(c => c.Reason == "device_unknown").Count);

        // A node whose journal was wiped starts its sequences again: new decisions under old sequences are stored.
        await store.WriteAsync(Journal(1, [.. Enumerable.Range(0, 10).Select(i => Decision(1000 + i))]), Ct);
        Assert.Equal(110, (await store.QueryAsync(new DecisionFilter { Limit = 1000 }, Ct)).Count);

        // Another node's sequences are its own.
        await store.WriteAsync(Journal(1, Decision(1, node: "gw-2")), Ct);
        Assert.Equal(111, (await store.QueryAsync(new DecisionFilter { Limit = 1000 }, Ct)).Count);
    }

    [Fact]
    public async Task Counts_AreBucketedByMinute_AcrossDays()
    {
        var store = await NewStoreAsync();
        // 23:58 to 00:02 across midnight, one decision per second, every 10th denied; alerts are not traffic.
        var events = Enumerable.Range(0, 240).Select(i => Decision(i, outcome: i % 10 == 0 ? DecisionOutcome.Deny : DecisionOutcome.Allow,
            reason: i % 10 == 0 ? ReasonCode.RouteNotAllowed : ReasonCode.Allowed)).Append(Decision(999, kind: DecisionKind.Alert, outcome: DecisionOutcome.Deny, reason: ReasonCode.CloneSuspected)).ToArray();
        await store.WriteAsync(Journal(1, events), Ct);

        var perMinute = await store.CountAsync(T0, T0.AddMinutes(4), TimeSpan.FromMinutes(1), Ct);
        Assert.Equal(4, perMinute.Select(c => c.Bucket).Distinct().Count());
        Assert.All(perMinute.Where(c => c.Outcome == DecisionOutcome.Deny), c => Assert.Equal(("route_not_allowed", 6L), (c.Reason, c.Count)));
        Assert.All(perMinute.Where(c => c.Outcome == DecisionOutcome.Allow), c => Assert.Equal(54, c.Count));
        var two = await store.CountAsync(T0, T0.AddMinutes(4), TimeSpan.FromMinutes(2), Ct);
        Assert.Equal([T0, T0.AddMinutes(2)], two.Select(c => c.Bucket).Distinct());
    }

    [Fact]
    public async Task Activity_SummarizesEachDevice_SinceATime()
    {
        var store = await NewStoreAsync();
        await store.WriteAsync(Journal(1,
            Decision(1, subject: "FC-0001"), Decision(2, subject: "FC-0001", outcome: DecisionOutcome.Deny, reason: ReasonCode.CertificateExpired),
            Decision(3, subject: "FC-0002"), Decision(4, subject: "FC-0003")), Ct);

        var activity = await store.ActivityAsync(["FC-0001", "FC-0002", "FC-9999"], T0, Ct);
        Assert.Equal(2, activity.Count);
        Assert.Equal((1L, 1L, T0.AddSeconds(2), "10.0.2.1", "certificate_expired"), (activity["FC-0001"].Allowed, activity["FC-0001"].Denied, activity["FC-0001"].Last, activity["FC-0001"].LastAddress, activity["FC-0001"].LastReason));
        Assert.Empty(await store.ActivityAsync(["FC-0001"], T0.AddMinutes(1), Ct));
    }

    [Theory]
    [InlineData(5)] // a site: one index range per unit
    [InlineData(70)] // more than that: one IN list
    public async Task ManyDevices_AreFoundTheSameWay_WhicheverQueryShapeIsUsed(int devices)
    {
        var store = await NewStoreAsync();
        await store.WriteAsync(Journal(1, [.. Enumerable.Range(0, 400).Select(i => Decision(i, subject: $"FC-{i % 100:D4}"))]), Ct);
        string[] asked = [.. Enumerable.Range(0, devices).Select(i => $"FC-{i:D4}")];

        var found = await store.QueryAsync(new DecisionFilter { Devices = asked, Limit = 1000 }, Ct);
        Assert.Equal(devices * 4, found.Count);
        Assert.True(found.Zip(found.Skip(1)).All(p => p.First.Event.Time >= p.Second.Event.Time));
        Assert.Equal(3, (await store.QueryAsync(new DecisionFilter { Devices = asked, Limit = 3 }, Ct)).Count);
        var activity = await store.ActivityAsync(asked, T0, Ct);
        Assert.Equal(devices, activity.Count);
        Assert.All(activity.Values, a => Assert.Equal(4, a.Allowed));
    }

    [Fact]
    public async Task Retention_RemovesWhatIsOlder_AndKeepsTheRest()
    {
        var store = await NewStoreAsync();
        var now = new DateTimeOffset(2026, 12, 10, 12, 0, 0, TimeSpan.Zero);
        await store.WriteAsync(Journal(1, [.. Enumerable.Range(0, 10).Select(d => Decision(d, at: now.AddDays(-d)))]), Ct);

        await store.MaintainAsync(now, now.AddDays(-5), Ct);

        var kept = await store.QueryAsync(new DecisionFilter { Limit = 100 }, Ct);
        // SQLite by row, PostgreSQL by whole day: either way the cutoff's own day (noon, 5 days back) is kept.
        Assert.Equal(Enumerable.Range(0, 6).Select(d => now.AddDays(-d)), kept.Select(k => k.Event.Time));
        Assert.Empty(await store.CountAsync(now.AddDays(-20), now.AddDays(-5.5), TimeSpan.FromDays(1), Ct));
        Assert.NotEmpty(await store.CountAsync(now.AddDays(-5.5), now.AddDays(1), TimeSpan.FromDays(1), Ct));
    }
}

public sealed class SqliteDecisionStoreTests : DecisionStoreContract, IDisposable
{
    private readonly TempDirectory _temp = new();

    protected override async Task<SqlDecisionStore> NewStoreAsync()
    {
        var store = new SqliteDecisionStore(_temp.Combine($"decisions-{Guid.NewGuid():N}.db"));
        await store.MigrateAsync(Ct);
        return store;
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _temp.Dispose();
    }
}

public sealed class PostgresDecisionStoreTests(PostgresServerFixture postgres) : DecisionStoreContract, IClassFixture<PostgresServerFixture>, IAsyncDisposable
{
    private readonly List<PostgresDecisionStore> _stores = [];

    protected override async Task<SqlDecisionStore> NewStoreAsync() => await NewPostgresAsync(await postgres.CreateDatabaseAsync());

    private async Task<PostgresDecisionStore> NewPostgresAsync(string connectionString)
    {
        var store = PostgresDecisionStore.Create(connectionString);
        _stores.Add(store);
        await store.MigrateAsync(Ct);
        return store;
    }

    [Fact]
    public async Task EachDay_IsAPartition_AndRetentionDropsWholeDays()
    {
        var database = await postgres.CreateDatabaseAsync();
        var store = await NewPostgresAsync(database);
        var now = new DateTimeOffset(2026, 12, 10, 0, 30, 0, TimeSpan.Zero);
        await store.WriteAsync(Journal(1, [.. Enumerable.Range(0, 5).Select(d => Decision(d, at: now.AddDays(-d)))]), Ct);
        Assert.Equal(["zt_decisions_p20261206", "zt_decisions_p20261207", "zt_decisions_p20261208", "zt_decisions_p20261209", "zt_decisions_p20261210"], await PartitionsAsync(database));

        Assert.Equal(1, await store.MaintainAsync(now, now.AddDays(-2.5), Ct)); // the cutoff falls on 7 December 12:30: 6 December goes
        var partitions = await PartitionsAsync(database);
        Assert.Equal(["zt_decisions_p20261207", "zt_decisions_p20261208", "zt_decisions_p20261209", "zt_decisions_p20261210", "zt_decisions_p20261211"], partitions); // and tomorrow is made
        Assert.Equal(4, (await store.QueryAsync(new DecisionFilter(), Ct)).Count);

        // A second node on the same database: its writes land in the same partitions, under its own high-water mark.
        var second = await NewPostgresAsync(database);
        await second.WriteAsync(Journal(1, Decision(1, node: "gw-2", at: now)), Ct);
        Assert.Equal(5, (await store.QueryAsync(new DecisionFilter(), Ct)).Count);
    }

    [Fact]
    public async Task TheDenialAndDeviceQueries_UseTheirIndexes() // each partition's copy of the index, named for its columns
    {
        var database = await postgres.CreateDatabaseAsync();
        var store = await NewPostgresAsync(database);
        var start = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        for (var chunk = 0; chunk < 10; chunk++)
        {
            await store.WriteAsync(Journal(1 + (chunk * 2000), [.. Enumerable.Range(chunk * 2000, 2000).Select(i => Decision(i, subject: $"FC-{i % 500:D4}", at: start.AddSeconds(i * 10)))]), Ct);
        }

        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync(Ct);
        await using (var analyze = new NpgsqlCommand("ANALYZE zt_decisions;", connection))
        {
            await analyze.ExecuteNonQueryAsync(Ct);
        }

        Assert.Contains("_reason_time_idx", await PlanAsync(connection, "SELECT event FROM zt_decisions WHERE outcome = 'deny' AND reason = 'clone_suspected' ORDER BY time DESC LIMIT 200"), StringComparison.Ordinal);
        Assert.Contains("_subject_time_idx", await PlanAsync(connection, "SELECT event FROM zt_decisions WHERE subject = ANY(ARRAY['FC-0007']) AND listener <> 'user' ORDER BY time DESC LIMIT 200"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WhileTheDatabaseRefuses_BatchesFail_AndTheNextWriteCarriesOn()
    {
        var database = await postgres.CreateDatabaseAsync();
        var store = await NewPostgresAsync(database);
        var name = new NpgsqlConnectionStringBuilder(database).Database!;
        await store.WriteAsync(Journal(1, Decision(1)), Ct);

        await AdminAsync($"ALTER DATABASE {name} ALLOW_CONNECTIONS false; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';");
        NpgsqlConnection.ClearAllPools();
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => store.WriteAsync(Journal(2, Decision(2)), Ct)); // the pipeline spools it

        await AdminAsync($"ALTER DATABASE {name} ALLOW_CONNECTIONS true;");
        await store.WriteAsync(Journal(2, Decision(2)), Ct);
        Assert.Equal(2, (await store.QueryAsync(new DecisionFilter(), Ct)).Count);
    }

    [Fact]
    public async Task AfterTheServerDropsEveryConnection_TheNextQueryIsAnswered()
    {
        var database = await postgres.CreateDatabaseAsync();
        var store = await NewPostgresAsync(database);
        var name = new NpgsqlConnectionStringBuilder(database).Database!;
        await store.WriteAsync(Journal(1, Decision(1)), Ct);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => store.QueryAsync(new DecisionFilter(), Ct))); // several pooled connections

        // What a restarted server leaves behind: every pooled connection dead.
        await AdminAsync($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';");
        Assert.Single(await store.QueryAsync(new DecisionFilter(), Ct));
        Assert.Single(await store.ActivityAsync(["FC-0001"], DateTimeOffset.MinValue.AddYears(2000), Ct));
    }

    [Fact]
    public async Task AsAPipelineLane_DecisionsMadeWhileTheDatabaseIsAway_ArriveOnce_WhenItReturns()
    {
        using var temp = new TempDirectory();
        var database = await postgres.CreateDatabaseAsync();
        var store = await NewPostgresAsync(database);
        var name = new NpgsqlConnectionStringBuilder(database).Database!;
        var pipeline = Events.Pipeline(temp.Combine("spool"), new DecisionStoreSink(store));
        await pipeline.StartAsync(Ct);
        var posted = new List<string>();
        void PostSome(int from)
        {
            for (var i = from; i < from + 2000; i++)
            {
                var e = Events.Make(i) with { Node = "gw-1" };
                posted.Add(e.Id);
                pipeline.Post(e);
            }
        }

        PostSome(0);
        await Eventually.Until(async () => (await store.QueryAsync(new DecisionFilter { Limit = 10_000 }, Ct)).Count, n => n == 2000, "the first 2,000 stored");
        await AdminAsync($"ALTER DATABASE {name} ALLOW_CONNECTIONS false; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';");
        PostSome(2000);
        await Eventually.Until(() => pipeline.Sinks.Single().FailingSince is not null, "the store lane failing");
        await AdminAsync($"ALTER DATABASE {name} ALLOW_CONNECTIONS true;");

        var stored = await Eventually.Until(async () => await store.QueryAsync(new DecisionFilter { Limit = 10_000 }, Ct), s => s.Count >= 4000, "all 4,000 stored");
        await pipeline.StopAsync(Ct);
        stored = await store.QueryAsync(new DecisionFilter { Limit = 10_000 }, Ct);
        Assert.Equal(posted.AsEnumerable().Reverse(), stored.Select(s => s.Event.Id)); // each once, in the order made
    }

    private async Task AdminAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(postgres.ConnectionString("postgres"));
        await connection.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    private static async Task<string> PlanAsync(NpgsqlConnection connection, string sql)
    {
        await using var cmd = new NpgsqlCommand("EXPLAIN " + sql, connection);
        var lines = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            lines.Add(reader.GetString(0));
        }

        return string.Join('\n', lines);
    }

    private static async Task<List<string>> PartitionsAsync(string database)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'zt_decisions' ORDER BY 1;", connection);
        var names = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }
    }
}
