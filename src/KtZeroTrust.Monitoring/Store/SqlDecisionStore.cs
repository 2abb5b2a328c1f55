using System.Data.Common;
using System.Globalization;
using System.Text;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;

namespace KtZeroTrust.Monitoring.Store;

/// <summary>
/// What PostgreSQL and SQLite share: one schema shape (<c>zt_decisions</c>, times in Unix microseconds, names as in the
/// decision log; <c>zt_decision_minutes</c>, the per-minute counts; <c>zt_decision_sources</c>, each node's last stored
/// journal sequence), the exactly-once write and the queries. The engines differ in how rows go in (COPY, prepared
/// inserts), in partitions and retention, and in how a list of devices is passed.
/// </summary>
public abstract class SqlDecisionStore : IDecisionStore
{
    /// <summary>Kinds counted per minute: the traffic (alerts, admin and system decisions are few and read as rows).</summary>
    private const string CountedKinds = "('access','attestation','enrollment')";

    /// <summary>Up to this many devices are read one index range each (a site); more, as one IN list.</summary>
    private const int PerDeviceUnion = 64;

    private volatile bool _ready;

    /// <summary>Creates or upgrades the schema; idempotent, so two callers at once (or two nodes) do no harm.</summary>
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        if (!_ready)
        {
            await ApplySchemaAsync(cancellationToken);
            _ready = true;
        }
    }

    protected abstract Task ApplySchemaAsync(CancellationToken cancellationToken);

    public abstract Task<long> MaintainAsync(DateTimeOffset now, DateTimeOffset cutoff, CancellationToken cancellationToken);

    protected abstract Task<DbConnection> OpenAsync(CancellationToken cancellationToken);

    /// <summary>After a transient failure: drop pooled connections (a restarted server leaves every one of them dead).</summary>
    protected virtual void ConnectionsBroken()
    {
    }

    /// <summary>
    /// A read, tried a second time on a fresh connection when the first fails transiently: after the database
    /// restarts, the first use of each pooled connection fails, and the analyst's query should not be that one.
    /// </summary>
    private async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> read, CancellationToken cancellationToken)
    {
        await MigrateAsync(cancellationToken);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await OpenAsync(cancellationToken);
                return await read(connection);
            }
            catch (DbException ex) when (ex.IsTransient && attempt == 1 && !cancellationToken.IsCancellationRequested)
            {
                ConnectionsBroken();
            }
        }
    }

    /// <summary>A write transaction that holds the node's high-water row (taken in <see cref="HighWaterAsync"/>).</summary>
    protected abstract Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken);

    protected abstract Task InsertAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<JournaledDecision> rows, CancellationToken cancellationToken);

    /// <summary>The ids among <paramref name="candidates"/> already stored (a replay's overlap).</summary>
    protected abstract Task<HashSet<string>> ExistingAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<JournaledDecision> candidates, CancellationToken cancellationToken);

    /// <summary>A condition "column is one of <paramref name="values"/>", its parameters added to <paramref name="command"/>.</summary>
    protected abstract string InList(DbCommand command, string column, IReadOnlyCollection<string> values);

    /// <summary>Before the write transaction: whatever the rows' days need (PostgreSQL: their partitions).</summary>
    protected virtual Task PrepareDaysAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The row's lock in PostgreSQL (<c>FOR UPDATE</c>); SQLite's write transaction already excludes other writers.</summary>
    protected virtual string LockClause => "";

    public async Task WriteAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
        {
            return;
        }

        try
        {
            await WriteBatchAsync(batch, cancellationToken);
        }
        catch (DbException ex) when (ex.IsTransient)
        {
            ConnectionsBroken(); // the lane retries the batch: on a fresh connection, not the next dead pooled one
            throw;
        }
    }

    private async Task WriteBatchAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken)
    {
        await MigrateAsync(cancellationToken); // the database may have been away at start: the first write makes the schema
        await PrepareDaysAsync(batch, cancellationToken);
        await using var connection = await OpenAsync(cancellationToken);
        await using var tx = await BeginWriteAsync(connection, cancellationToken);
        var stored = new List<JournaledDecision>(batch.Count);
        foreach (var fromNode in batch.GroupBy(e => e.Event.Node ?? ""))
        {
            var rows = fromNode.ToList();
            var last = await HighWaterAsync(connection, tx, fromNode.Key, cancellationToken);
            var overlap = rows.Where(e => e.Sequence != 0 && e.Sequence <= last).ToList();
            if (overlap.Count > 0)
            {
                var existing = await ExistingAsync(connection, tx, overlap, cancellationToken);
                rows.RemoveAll(e => existing.Contains(e.Event.Id));
            }

            if (rows.Count > 0)
            {
                await InsertAsync(connection, tx, rows, cancellationToken);
                stored.AddRange(rows);
            }

            var highest = fromNode.Max(e => e.Sequence);
            if (highest > last)
            {
                await using var update = Command(connection, tx, "UPDATE zt_decision_sources SET last_sequence = @s WHERE node = @n;");
                Add(update, "@s", highest);
                Add(update, "@n", fromNode.Key);
                await update.ExecuteNonQueryAsync(cancellationToken);
            }
        }

        await CountMinutesAsync(connection, tx, stored, cancellationToken);
        await tx.CommitAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<JournaledDecision>> QueryAsync(DecisionFilter filter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return await ReadAsync(connection => QueryAsync(connection, filter, cancellationToken), cancellationToken);
    }

    private async Task<IReadOnlyList<JournaledDecision>> QueryAsync(DbConnection connection, DecisionFilter filter, CancellationToken cancellationToken)
    {
        await using var cmd = connection.CreateCommand();
        var where = new StringBuilder("1 = 1");
        if (filter.Since is { } since)
        {
            where.Append(" AND time >= @since");
            Add(cmd, "@since", Micros(since));
        }

        if (filter.Until is { } until)
        {
            where.Append(" AND time <= @until");
            Add(cmd, "@until", Micros(until));
        }

        // Outcome and kind are written into the text from closed sets (never the caller's text), so PostgreSQL
        // matches the partial indexes (denials by reason, alerts) whatever plan it caches.
        if (filter.Outcome is { } outcome)
        {
            where.Append(outcome == DecisionOutcome.Allow ? " AND outcome = 'allow'" : " AND outcome = 'deny'");
        }

        if (filter.Kind is { Length: > 0 } kindName)
        {
            if (!DecisionNames.TryParse(kindName, out var kind))
            {
                return [];
            }

            where.Append(" AND kind = '").Append(DecisionNames.Name(kind)).Append('\'');
        }

        // Columns compared with the caller's value, always as a parameter.
        void Equal(string column, string? value)
        {
            if (value is { Length: > 0 })
            {
                where.Append(" AND ").Append(column).Append(" = @").Append(column);
                Add(cmd, "@" + column, value);
            }
        }

        Equal("reason", filter.Reason);
        Equal("route", filter.Route);
        Equal("source_address", filter.Source);
        Equal("id", filter.Id);

        var devices = filter.Devices;
        if (devices is { Count: 0 })
        {
            return [];
        }

        if (devices is { Count: 1 or > PerDeviceUnion })
        {
            where.Append(" AND ").Append(devices.Count == 1 ? "subject = @device" : InList(cmd, "subject", devices)).Append(" AND listener <> 'user'");
            if (devices.Count == 1)
            {
                Add(cmd, "@device", devices.First());
            }
        }

        if (filter.User is { Length: > 0 } user)
        {
            where.Append(" AND subject = @user AND listener = 'user'");
            Add(cmd, "@user", user);
        }

        var limit = Math.Clamp(filter.Limit, 1, 100_000);
        if (devices is { Count: > 1 and <= PerDeviceUnion })
        {
            // A site's units: the newest of each unit from its own (device, time) index, merged. Asked as one IN list,
            // both engines walk the time index backwards and filter, reading a whole busy day to find a site's rows.
            var parts = devices.Select((device, i) =>
            {
                Add(cmd, "@d" + i.ToString(CultureInfo.InvariantCulture), device);
                return $"SELECT * FROM (SELECT event, sequence, time FROM zt_decisions WHERE {where} AND subject = @d{i} AND listener <> 'user' ORDER BY time DESC LIMIT {limit}) AS p{i}";
            });
            cmd.CommandText = $"SELECT event, sequence FROM ({string.Join(" UNION ALL ", parts)}) AS u ORDER BY time DESC LIMIT {limit};";
        }
        else
        {
            cmd.CommandText = $"SELECT event, sequence FROM zt_decisions WHERE {where} ORDER BY time DESC LIMIT {limit};";
        }

        var found = new List<JournaledDecision>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            found.Add(JournaledDecision.Read(Encoding.UTF8.GetBytes(reader.GetString(0)), reader.GetInt64(1)));
        }

        return found;
    }

    public async Task<IReadOnlyList<DecisionCount>> CountAsync(DateTimeOffset since, DateTimeOffset until, TimeSpan bucket, CancellationToken cancellationToken)
    {
        var seconds = Math.Max(60, (long)bucket.TotalSeconds / 60 * 60);
        return await ReadAsync(connection => CountAsync(connection, since, until, seconds, cancellationToken), cancellationToken);
    }

    private static async Task<IReadOnlyList<DecisionCount>> CountAsync(DbConnection connection, DateTimeOffset since, DateTimeOffset until, long seconds, CancellationToken cancellationToken)
    {
        await using var cmd = Command(connection, null,
            $"SELECT (minute / {seconds}) * {seconds}, kind, outcome, reason, SUM(count) FROM zt_decision_minutes WHERE minute >= @since AND minute < @until AND kind IN {CountedKinds} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;");
        Add(cmd, "@since", since.ToUnixTimeSeconds());
        Add(cmd, "@until", until.ToUnixTimeSeconds());
        var counts = new List<DecisionCount>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            counts.Add(new DecisionCount(DateTimeOffset.FromUnixTimeSeconds(reader.GetInt64(0)), reader.GetString(1), reader.GetString(2) == "allow" ? DecisionOutcome.Allow : DecisionOutcome.Deny,
                reader.GetString(3), Convert.ToInt64(reader.GetValue(4), CultureInfo.InvariantCulture)));
        }

        return counts;
    }

    public async Task<IReadOnlyDictionary<string, SubjectActivity>> ActivityAsync(IReadOnlyCollection<string> subjects, DateTimeOffset since, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(subjects);
        var activity = new Dictionary<string, SubjectActivity>(StringComparer.Ordinal);
        if (subjects.Count == 0)
        {
            return activity;
        }

        return await ReadAsync(connection => ActivityAsync(connection, subjects, since, cancellationToken), cancellationToken);
    }

    private async Task<IReadOnlyDictionary<string, SubjectActivity>> ActivityAsync(DbConnection connection, IReadOnlyCollection<string> subjects, DateTimeOffset since, CancellationToken cancellationToken)
    {
        var activity = new Dictionary<string, SubjectActivity>(StringComparer.Ordinal);
        await using var cmd = connection.CreateCommand();
        Add(cmd, "@since", Micros(since));
        // A site's units one index range each (as in QueryAsync); a long list as one IN list.
        var rows = subjects.Count <= PerDeviceUnion
            ? string.Join(" UNION ALL ", subjects.Select((subject, i) =>
            {
                Add(cmd, "@d" + i.ToString(CultureInfo.InvariantCulture), subject);
                return $"SELECT subject, outcome, time FROM zt_decisions WHERE subject = @d{i} AND listener <> 'user' AND time >= @since";
            }))
            : $"SELECT subject, outcome, time FROM zt_decisions WHERE {InList(cmd, "subject", subjects)} AND listener <> 'user' AND time >= @since";
        cmd.CommandText = $"""
            SELECT s.subject, s.allowed, s.denied, s.last,
                (SELECT source_address FROM zt_decisions d WHERE d.subject = s.subject AND d.time = s.last AND d.listener <> 'user' LIMIT 1),
                (SELECT reason FROM zt_decisions d WHERE d.subject = s.subject AND d.time = s.last AND d.listener <> 'user' LIMIT 1)
            FROM (SELECT subject, SUM(CASE WHEN outcome = 'allow' THEN 1 ELSE 0 END) AS allowed, SUM(CASE WHEN outcome = 'deny' THEN 1 ELSE 0 END) AS denied, MAX(time) AS last
                  FROM ({rows}) AS r GROUP BY subject) s;
            """;
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            activity[reader.GetString(0)] = new SubjectActivity(Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture), Convert.ToInt64(reader.GetValue(2), CultureInfo.InvariantCulture),
                FromMicros(reader.GetInt64(3)), reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? "" : reader.GetString(5));
        }

        return activity;
    }

    /// <summary>The node's last stored journal sequence (0 for a node never seen, whose row is made).</summary>
    private async Task<long> HighWaterAsync(DbConnection connection, DbTransaction tx, string node, CancellationToken cancellationToken)
    {
        await using (var insert = Command(connection, tx, "INSERT INTO zt_decision_sources (node, last_sequence) VALUES (@n, 0) ON CONFLICT (node) DO NOTHING;"))
        {
            Add(insert, "@n", node);
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var select = Command(connection, tx, $"SELECT last_sequence FROM zt_decision_sources WHERE node = @n{LockClause};");
        Add(select, "@n", node);
        return Convert.ToInt64(await select.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);
    }

    /// <summary>Adds the rows to the per-minute counts, in key order (two nodes adding to the same minutes never deadlock).</summary>
    private static async Task CountMinutesAsync(DbConnection connection, DbTransaction tx, List<JournaledDecision> stored, CancellationToken cancellationToken)
    {
        var groups = stored.Select(e => e.Event).Where(e => e.Kind is DecisionKind.Access or DecisionKind.Attestation or DecisionKind.Enrollment)
            .GroupBy(e => (Minute: e.Time.ToUnixTimeSeconds() / 60 * 60, Kind: DecisionNames.Name(e.Kind), Outcome: Outcome(e.Outcome), Reason: ReasonCodes.Name(e.Reason)))
            .OrderBy(g => g.Key.Minute).ThenBy(g => g.Key.Kind, StringComparer.Ordinal).ThenBy(g => g.Key.Outcome, StringComparer.Ordinal).ThenBy(g => g.Key.Reason, StringComparer.Ordinal)
            .ToList();
        if (groups.Count == 0)
        {
            return;
        }

        await using var upsert = Command(connection, tx, """
            INSERT INTO zt_decision_minutes (minute, kind, outcome, reason, count) VALUES (@m, @k, @o, @r, @c)
            ON CONFLICT (minute, kind, outcome, reason) DO UPDATE SET count = zt_decision_minutes.count + excluded.count;
            """);
        var (m, k, o, r, c) = (Add(upsert, "@m", 0L), Add(upsert, "@k", ""), Add(upsert, "@o", ""), Add(upsert, "@r", ""), Add(upsert, "@c", 0L));
        foreach (var g in groups)
        {
            (m.Value, k.Value, o.Value, r.Value, c.Value) = (g.Key.Minute, g.Key.Kind, g.Key.Outcome, g.Key.Reason, (long)g.Count());
            await upsert.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    protected static string Outcome(DecisionOutcome outcome) => outcome == DecisionOutcome.Allow ? "allow" : "deny";

    protected static long Micros(DateTimeOffset at) => (at.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    protected static DateTimeOffset FromMicros(long micros) => DateTimeOffset.UnixEpoch.AddTicks(micros * 10);

    /// <summary>The UTC day a time falls in, as a day number since 1970 (a partition's key).</summary>
    protected static long Day(long micros) => (long)Math.Floor(micros / 86_400_000_000.0);

    protected static DbCommand Command(DbConnection connection, DbTransaction? tx, string sql)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        return cmd;
    }

    protected static DbParameter Add(DbCommand command, string name, object? value)
    {
        ArgumentNullException.ThrowIfNull(command);
        var p = command.CreateParameter();
        p.ParameterName = name;
        p.Value = value ?? DBNull.Value;
        command.Parameters.Add(p);
        return p;
    }
}
