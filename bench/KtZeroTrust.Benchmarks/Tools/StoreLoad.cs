using System.Diagnostics;
using System.Globalization;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Store;

namespace KtZeroTrust.Benchmarks.Tools;

/// <summary>
/// The decision store under fleet load: <c>store-load --postgres CS | --sqlite FILE [--rows N] [--devices N] [--days N]
/// [--batch N] [--writers N] [--queries N]</c>. Writes N decisions spread over the last days (each writer a gateway
/// node: its own journal sequences, one batch at a time, as a pipeline lane writes), then times the SOC's questions
/// through the store's API (what the console calls): one unit's last 24 hours, a week's clone_suspected denials, one
/// site's units (their decisions and activity), and the week's chart. Prints RESULT key=value lines.
/// </summary>
internal static class StoreLoad
{
    private const int UnitsPerSite = 20;

    public static async Task<int> RunAsync(string[] args)
    {
        string? Arg(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        int Number(string name, int fallback) => Arg(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        var rows = Number("--rows", 1_000_000);
        var devices = Number("--devices", 10_000);
        var days = Number("--days", 7);
        var batch = Number("--batch", 4096);
        var writers = Number("--writers", 1);
        var queries = Number("--queries", 200);
        var skipLoad = args.Contains("--queries-only");
        await using var disposable = Arg("--postgres") is { } postgres ? PostgresDecisionStore.Create(postgres) : null;
        SqlDecisionStore store = disposable is not null ? disposable : new SqliteDecisionStore(Arg("--sqlite") ?? throw new ArgumentException("--postgres CONNECTION or --sqlite FILE"));
        await store.MigrateAsync(CancellationToken.None);
        var end = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        var start = end.AddDays(-days);
        var step = (end - start) / rows;

        if (!skipLoad)
        {
            // Generation alone, to tell the client's share from the database's.
            var probe = Stopwatch.StartNew();
            for (var b = 0; b < 20; b++)
            {
                Batch(b * batch, batch, 0, devices, start, step);
            }

            var generateRate = 20.0 * batch / probe.Elapsed.TotalSeconds;

            var watch = Stopwatch.StartNew();
            var batches = (rows + batch - 1) / batch;
            var next = -1;
            await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
            {
                long sequence = 1;
                for (var b = Interlocked.Increment(ref next); b < batches; b = Interlocked.Increment(ref next))
                {
                    var first = b * batch;
                    var decisions = Batch(first, Math.Min(batch, rows - first), w, devices, start, step);
                    var journaled = JournaledDecision.Serialize(decisions, sequence);
                    sequence += decisions.Length;
                    await store.WriteAsync(journaled, CancellationToken.None);
                }
            })));
            var elapsed = watch.Elapsed;
            Console.WriteLine($"RESULT store_rows={rows} store_batch={batch} store_writers={writers} insert_seconds={elapsed.TotalSeconds:0.0} insert_per_second={rows / elapsed.TotalSeconds:0} generate_only_per_second={generateRate:0}");
        }

        // The steady state a running store is in (autovacuum analyzes and checkpoints within minutes of a load):
        // asked straight after a 10-million-row load, the planner has no statistics and the disk is still busy writing it.
        var settle = Stopwatch.StartNew();
        if (Arg("--postgres") is { } connectionString)
        {
            await using var connection = new Npgsql.NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            foreach (var sql in new[] { "VACUUM (ANALYZE) zt_decisions;", "CHECKPOINT;" })
            {
                await using var cmd = new Npgsql.NpgsqlCommand(sql, connection) { CommandTimeout = 3600 };
                await cmd.ExecuteNonQueryAsync();
            }
        }

        Console.WriteLine($"RESULT settle_seconds={settle.Elapsed.TotalSeconds:0.0}");
        var random = new Random(7);
        var since24h = end.AddHours(-24);
        await TimeAsync("unit_24h", queries, async () =>
            (await store.QueryAsync(new DecisionFilter { Devices = [Serial(random.Next(devices))], Since = since24h, Limit = 500 }, CancellationToken.None)).Count);
        await TimeAsync("clone_week", queries, async () =>
            (await store.QueryAsync(new DecisionFilter { Outcome = DecisionOutcome.Deny, Reason = "clone_suspected", Since = end.AddDays(-7), Limit = 500 }, CancellationToken.None)).Count);
        await TimeAsync("site_units", queries, async () =>
        {
            var site = random.Next(devices / UnitsPerSite);
            string[] units = [.. Enumerable.Range(site * UnitsPerSite, UnitsPerSite).Select(Serial)];
            var recent = await store.QueryAsync(new DecisionFilter { Devices = units, Since = since24h, Limit = 200 }, CancellationToken.None);
            var activity = await store.ActivityAsync(units, since24h, CancellationToken.None);
            return recent.Count + activity.Count;
        });
        await TimeAsync("chart_week", Math.Max(10, queries / 10), async () =>
            (await store.CountAsync(end.AddDays(-7), end, TimeSpan.FromHours(3), CancellationToken.None)).Count);
        return 0;
    }

    private static async Task TimeAsync(string name, int runs, Func<Task<int>> query)
    {
        await query(); // warm: connection pool, plan
        var times = new double[runs];
        long found = 0;
        for (var i = 0; i < runs; i++)
        {
            var watch = Stopwatch.StartNew();
            found += await query();
            times[i] = watch.Elapsed.TotalMilliseconds;
        }

        Array.Sort(times);
        Console.WriteLine($"RESULT query={name} runs={runs} p50_ms={times[runs / 2]:0.00} p99_ms={times[Math.Min(runs - 1, (int)(runs * 0.99))]:0.00} mean_rows={found / (double)runs:0.0}");
    }

    private static string Serial(int i) => $"FC-{i:D6}";

    /// <summary>
    /// Decisions <paramref name="first"/>.. in time order: mostly allowed; 3% denied for a handful of reasons; one in
    /// 5,000 a clone_suspected denial, one in 50,000 an alert.
    /// </summary>
    private static DecisionEvent[] Batch(int first, int count, int writer, int devices, DateTimeOffset start, TimeSpan step)
    {
        var result = new DecisionEvent[count];
        for (var n = 0; n < count; n++)
        {
            var i = first + n;
            var hash = (uint)(i * 2654435761u);
            var unit = (int)(hash % (uint)devices);
            var (outcome, reason, kind) = (hash % 5000) switch
            {
                0 => (DecisionOutcome.Deny, ReasonCode.CloneSuspected, DecisionKind.Access),
                < 150 => (DecisionOutcome.Deny, (hash % 3) switch { 0 => ReasonCode.RouteNotAllowed, 1 => ReasonCode.CertificateExpired, _ => ReasonCode.DeviceRevoked }, DecisionKind.Access),
                _ => (DecisionOutcome.Allow, ReasonCode.Allowed, DecisionKind.Access),
            };
            if (hash % 50_000 == 1)
            {
                (outcome, reason, kind) = (DecisionOutcome.Deny, ReasonCode.CloneSuspected, DecisionKind.Alert);
            }

            result[n] = new DecisionEvent
            {
                Id = $"B{writer}{i:D24}",
                Time = start + (step * i),
                Kind = kind,
                Listener = DecisionListener.Device,
                Subject = Serial(unit),
                SourceAddress = $"10.{(unit >> 16) & 255}.{(unit >> 8) & 255}.{unit & 255}",
                SourcePort = 40000 + (i % 20000),
                Method = "GET",
                Path = "/femto/status",
                Route = "femto",
                Outcome = outcome,
                Reason = reason,
                CertificateHash = "3f1c0a9be2d4c6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c8d0e2f4a6b8c0d2e4f6",
                LatencyMicroseconds = 11.5,
                Node = $"bench-gw-{writer}",
                PolicyVersion = "p-7d1e",
            };
        }

        return result;
    }
}
