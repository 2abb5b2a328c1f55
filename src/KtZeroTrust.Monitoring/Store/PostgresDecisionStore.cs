using System.Collections.Concurrent;
using System.Data;
using System.Data.Common;
using System.Globalization;
using System.Text;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using Npgsql;
using NpgsqlTypes;

namespace KtZeroTrust.Monitoring.Store;

/// <summary>
/// The decision store on PostgreSQL: <c>zt_decisions</c> partitioned by UTC day (<c>zt_decisions_pYYYYMMDD</c>, made
/// before the first row of a day arrives and dropped whole once older than the retention), rows in by binary COPY.
/// Indexes: time; device and time; reason and time of denials; time of alerts (partial indexes keep the write cost
/// of the two rare questions small).
/// </summary>
public sealed class PostgresDecisionStore(NpgsqlDataSource dataSource) : SqlDecisionStore, IAsyncDisposable
{
    private const long LockKey = 0x4b545a44; // "KTZD": schema steps and partition changes, one node at a time

    private static readonly string[] Schema =
    [
        """
        CREATE TABLE IF NOT EXISTS zt_decisions (
            time BIGINT NOT NULL, id TEXT NOT NULL, node TEXT NOT NULL, sequence BIGINT NOT NULL, kind TEXT NOT NULL, listener TEXT NOT NULL,
            subject TEXT NULL, source_address TEXT NULL, route TEXT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL, event TEXT NOT NULL
        ) PARTITION BY RANGE (time);
        """,
        "CREATE INDEX IF NOT EXISTS ix_zt_decisions_time ON zt_decisions (time);",
        "CREATE INDEX IF NOT EXISTS ix_zt_decisions_subject ON zt_decisions (subject, time);",
        "CREATE INDEX IF NOT EXISTS ix_zt_decisions_denied ON zt_decisions (reason, time) WHERE outcome = 'deny';",
        "CREATE INDEX IF NOT EXISTS ix_zt_decisions_alerts ON zt_decisions (time) WHERE kind = 'alert';",
        """
        CREATE TABLE IF NOT EXISTS zt_decision_minutes (
            minute BIGINT NOT NULL, kind TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL, count BIGINT NOT NULL,
            PRIMARY KEY (minute, kind, outcome, reason));
        """,
        "CREATE TABLE IF NOT EXISTS zt_decision_sources (node TEXT PRIMARY KEY, last_sequence BIGINT NOT NULL);",
    ];

    private const string Copy = "COPY zt_decisions (time, id, node, sequence, kind, listener, subject, source_address, route, outcome, reason, event) FROM STDIN (FORMAT BINARY)";

    // Days whose partition is known to exist (a cache: a miss costs one idempotent CREATE ... IF NOT EXISTS).
    private readonly ConcurrentDictionary<long, byte> _days = new();

    public static PostgresDecisionStore Create(string connectionString) => new(NpgsqlDataSource.Create(connectionString));

    protected override async Task ApplySchemaAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await LockAsync(connection, tx, cancellationToken);
        foreach (var step in Schema)
        {
            await using var cmd = new NpgsqlCommand(step, connection, tx);
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
    }

    public override async Task<long> MaintainAsync(DateTimeOffset now, DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        await MigrateAsync(cancellationToken);
        var today = Day(Micros(now));
        await EnsureDaysAsync([today, today + 1], cancellationToken);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await LockAsync(connection, tx, cancellationToken);
        var partitions = new List<string>();
        await using (var list = new NpgsqlCommand("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'zt_decisions';
            """, connection, tx))
        await using (var reader = await list.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                partitions.Add(reader.GetString(0));
            }
        }

        var lastKept = Day(Micros(cutoff)); // the day the cutoff falls in still has rows to keep
        var dropped = 0L;
        foreach (var name in partitions)
        {
            if (DayOf(name) is { } day && day < lastKept)
            {
                await using var drop = new NpgsqlCommand($"DROP TABLE {name};", connection, tx);
                await drop.ExecuteNonQueryAsync(cancellationToken);
                _days.TryRemove(day, out _);
                dropped++;
            }
        }

        await using (var minutes = new NpgsqlCommand("DELETE FROM zt_decision_minutes WHERE minute < @c;", connection, tx))
        {
            minutes.Parameters.AddWithValue("c", lastKept * 86_400);
            await minutes.ExecuteNonQueryAsync(cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        return dropped;
    }

    protected override Task PrepareDaysAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken)
    {
        var missing = batch.Select(e => Day(Micros(e.Event.Time))).Distinct().Where(d => !_days.ContainsKey(d)).ToList();
        return missing.Count == 0 ? Task.CompletedTask : EnsureDaysAsync(missing, cancellationToken);
    }

    protected override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken) => await dataSource.OpenConnectionAsync(cancellationToken);

    protected override async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);
    }

    protected override string LockClause => " FOR UPDATE";

    protected override void ConnectionsBroken() => dataSource.Clear();

    protected override async Task InsertAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<JournaledDecision> rows, CancellationToken cancellationToken)
    {
        await using var importer = await ((NpgsqlConnection)connection).BeginBinaryImportAsync(Copy, cancellationToken);
        foreach (var row in rows)
        {
            var e = row.Event;
            await importer.StartRowAsync(cancellationToken);
            await importer.WriteAsync(Micros(e.Time), NpgsqlDbType.Bigint, cancellationToken);
            await importer.WriteAsync(e.Id, NpgsqlDbType.Text, cancellationToken);
            await importer.WriteAsync(e.Node ?? "", NpgsqlDbType.Text, cancellationToken);
            await importer.WriteAsync(row.Sequence, NpgsqlDbType.Bigint, cancellationToken);
            await importer.WriteAsync(DecisionNames.Name(e.Kind), NpgsqlDbType.Text, cancellationToken);
            await importer.WriteAsync(DecisionNames.Name(e.Listener), NpgsqlDbType.Text, cancellationToken);
            await WriteNullableAsync(importer, e.Subject, cancellationToken);
            await WriteNullableAsync(importer, e.SourceAddress, cancellationToken);
            await WriteNullableAsync(importer, e.Route, cancellationToken);
            await importer.WriteAsync(Outcome(e.Outcome), NpgsqlDbType.Text, cancellationToken);
            await importer.WriteAsync(ReasonCodes.Name(e.Reason), NpgsqlDbType.Text, cancellationToken);
            await importer.WriteAsync(Encoding.UTF8.GetString(row.Json.Span), NpgsqlDbType.Text, cancellationToken);
        }

        await importer.CompleteAsync(cancellationToken);
    }

    protected override async Task<HashSet<string>> ExistingAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<JournaledDecision> candidates, CancellationToken cancellationToken)
    {
        // By time range first (the time index, the right partitions), then by id.
        await using var cmd = new NpgsqlCommand("SELECT id FROM zt_decisions WHERE time >= @from AND time <= @to AND id = ANY(@ids);", (NpgsqlConnection)connection, (NpgsqlTransaction)transaction);
        cmd.Parameters.AddWithValue("from", candidates.Min(e => Micros(e.Event.Time)));
        cmd.Parameters.AddWithValue("to", candidates.Max(e => Micros(e.Event.Time)));
        cmd.Parameters.AddWithValue("ids", candidates.Select(e => e.Event.Id).ToArray());
        var existing = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            existing.Add(reader.GetString(0));
        }

        return existing;
    }

    protected override string InList(DbCommand command, string column, IReadOnlyCollection<string> values)
    {
        Add(command, "@list", values.ToArray());
        return $"{column} = ANY(@list)";
    }

    public ValueTask DisposeAsync() => dataSource.DisposeAsync();

    private async Task EnsureDaysAsync(IReadOnlyCollection<long> days, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await LockAsync(connection, tx, cancellationToken); // two nodes creating the same day's table: one waits, then finds it
        foreach (var day in days)
        {
            var from = day * 86_400_000_000;
            await using var cmd = new NpgsqlCommand(
                $"CREATE TABLE IF NOT EXISTS {PartitionName(day)} PARTITION OF zt_decisions FOR VALUES FROM ({from}) TO ({from + 86_400_000_000});", connection, tx);
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        foreach (var day in days)
        {
            _days[day] = 0;
        }
    }

    private static async Task LockAsync(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({LockKey});", connection, tx);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private static string PartitionName(long day) => "zt_decisions_p" + DateTimeOffset.UnixEpoch.AddDays(day).ToString("yyyyMMdd", CultureInfo.InvariantCulture);

    private static long? DayOf(string partition)
        => partition.StartsWith("zt_decisions_p", StringComparison.Ordinal)
            && DateTime.TryParseExact(partition["zt_decisions_p".Length..], "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var d)
            ? (long)(d - DateTime.UnixEpoch).TotalDays
            : null;

    private static Task WriteNullableAsync(NpgsqlBinaryImporter importer, string? value, CancellationToken cancellationToken)
        => value is null ? importer.WriteNullAsync(cancellationToken) : importer.WriteAsync(value, NpgsqlDbType.Text, cancellationToken);
}
