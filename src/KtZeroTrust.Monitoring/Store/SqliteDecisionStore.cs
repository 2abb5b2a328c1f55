using System.Data.Common;
using System.Text;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using Microsoft.Data.Sqlite;

namespace KtZeroTrust.Monitoring.Store;

/// <summary>
/// The embedded decision store: one SQLite file (WAL) with the PostgreSQL store's tables and indexes, without partitions
/// (retention deletes old rows in chunks, so a long delete never holds the writer back).
/// </summary>
public sealed class SqliteDecisionStore : SqlDecisionStore
{
    private const int DeleteChunk = 20_000;

    private static readonly string[] Schema =
    [
        """
        CREATE TABLE IF NOT EXISTS zt_decisions (
            time INTEGER NOT NULL, id TEXT NOT NULL, node TEXT NOT NULL, sequence INTEGER NOT NULL, kind TEXT NOT NULL, listener TEXT NOT NULL,
            subject TEXT NULL, source_address TEXT NULL, route TEXT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL, event TEXT NOT NULL);
        """,
        "CREATE INDEX IF NOT EXISTS ix_zt_decisions_time ON zt_decisions (time);",
        "CREATE INDEX IF NOT EXISTS ix_zt_decisions_subject ON zt_decisions (subject, time);",
        "CREATE INDEX IF NOT EXISTS ix_zt_decisions_denied ON zt_decisions (reason, time) WHERE outcome = 'deny';",
        "CREATE INDEX IF NOT EXISTS ix_zt_decisions_alerts ON zt_decisions (time) WHERE kind = 'alert';",
        """
        CREATE TABLE IF NOT EXISTS zt_decision_minutes (
            minute INTEGER NOT NULL, kind TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL,
            PRIMARY KEY (minute, kind, outcome, reason));
        """,
        "CREATE TABLE IF NOT EXISTS zt_decision_sources (node TEXT PRIMARY KEY, last_sequence INTEGER NOT NULL);",
    ];

    private static readonly string[] Columns = ["@t", "@id", "@node", "@seq", "@kind", "@listener", "@subject", "@address", "@route", "@outcome", "@reason", "@event"];

    private readonly string _connectionString;

    public SqliteDecisionStore(string databasePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(databasePath);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 10,
        }.ToString();
    }

    protected override async Task ApplySchemaAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using (var wal = Command(connection, null, "PRAGMA journal_mode = WAL;"))
        {
            await wal.ExecuteNonQueryAsync(cancellationToken);
        }

        foreach (var step in Schema)
        {
            await using var cmd = Command(connection, null, step);
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    public override async Task<long> MaintainAsync(DateTimeOffset now, DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        await MigrateAsync(cancellationToken);
        var removed = 0L;
        await using var connection = await OpenAsync(cancellationToken);
        while (true)
        {
            await using var delete = Command(connection, null, $"DELETE FROM zt_decisions WHERE rowid IN (SELECT rowid FROM zt_decisions WHERE time < @c LIMIT {DeleteChunk});");
            Add(delete, "@c", Micros(cutoff));
            var n = await delete.ExecuteNonQueryAsync(cancellationToken);
            removed += n;
            if (n < DeleteChunk)
            {
                break;
            }
        }

        await using var minutes = Command(connection, null, "DELETE FROM zt_decision_minutes WHERE minute < @c;");
        Add(minutes, "@c", cutoff.ToUnixTimeSeconds());
        await minutes.ExecuteNonQueryAsync(cancellationToken);
        return removed;
    }

    protected override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var cmd = connection.CreateCommand();
        // synchronous=NORMAL in WAL: durable against a crash of the process (the journal covers the machine's).
        cmd.CommandText = "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;";
        await cmd.ExecuteNonQueryAsync(cancellationToken);
        return connection;
    }

    protected override Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken)
        => Task.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(deferred: false)); // BEGIN IMMEDIATE: the one writer

    protected override async Task InsertAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<JournaledDecision> rows, CancellationToken cancellationToken)
    {
        await using var insert = Command(connection, transaction, """
            INSERT INTO zt_decisions (time, id, node, sequence, kind, listener, subject, source_address, route, outcome, reason, event)
            VALUES (@t, @id, @node, @seq, @kind, @listener, @subject, @address, @route, @outcome, @reason, @event);
            """);
        var p = Columns.Select(n => Add(insert, n, null)).ToArray();
        insert.Prepare();
        foreach (var row in rows)
        {
            var e = row.Event;
            p[0].Value = Micros(e.Time);
            p[1].Value = e.Id;
            p[2].Value = e.Node ?? "";
            p[3].Value = row.Sequence;
            p[4].Value = DecisionNames.Name(e.Kind);
            p[5].Value = DecisionNames.Name(e.Listener);
            p[6].Value = (object?)e.Subject ?? DBNull.Value;
            p[7].Value = (object?)e.SourceAddress ?? DBNull.Value;
            p[8].Value = (object?)e.Route ?? DBNull.Value;
            p[9].Value = Outcome(e.Outcome);
            p[10].Value = ReasonCodes.Name(e.Reason);
            p[11].Value = Encoding.UTF8.GetString(row.Json.Span);
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    protected override async Task<HashSet<string>> ExistingAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<JournaledDecision> candidates, CancellationToken cancellationToken)
    {
        var existing = new HashSet<string>(StringComparer.Ordinal);
        await using var find = Command(connection, transaction, "SELECT 1 FROM zt_decisions WHERE time = @t AND id = @id;");
        var (t, id) = (Add(find, "@t", 0L), Add(find, "@id", ""));
        foreach (var e in candidates)
        {
            (t.Value, id.Value) = (Micros(e.Event.Time), e.Event.Id);
            if (await find.ExecuteScalarAsync(cancellationToken) is not null)
            {
                existing.Add(e.Event.Id);
            }
        }

        return existing;
    }

    protected override string InList(DbCommand command, string column, IReadOnlyCollection<string> values)
    {
        ArgumentNullException.ThrowIfNull(command);
        var names = new List<string>(values.Count);
        foreach (var value in values)
        {
            var name = "@in" + names.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            Add(command, name, value);
            names.Add(name);
        }

        return $"{column} IN ({string.Join(", ", names)})";
    }
}
