using System.Data.Common;
using KtZeroTrust.Registry.Sql;
using Microsoft.Data.Sqlite;

namespace KtZeroTrust.Registry.Sqlite;

/// <summary>The embedded device registry: one SQLite file in WAL mode, shared safely with ztctl in another process.</summary>
public sealed class SqliteDeviceRegistry : SqlDeviceRegistry
{
    private readonly string _connectionString;

    public SqliteDeviceRegistry(string databasePath, TimeProvider timeProvider)
        : base(timeProvider)
    {
        ArgumentException.ThrowIfNullOrEmpty(databasePath);
        var directory = Path.GetDirectoryName(Path.GetFullPath(databasePath));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 10,
        }.ToString();

        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        Configure(connection);
        SqliteMigrations.Apply(connection);
    }

    protected override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        Configure(connection);
        return connection;
    }

    protected override Task<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken cancellationToken)
        => Task.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(deferred: true));

    protected override bool IsUniqueViolation(DbException exception) => exception is SqliteException { SqliteErrorCode: 19 };

    private static void Configure(SqliteConnection connection)
    {
        using var cmd = connection.CreateCommand();
        // WAL with synchronous=NORMAL: a commit is durable against a crash of the process, not of the machine, and costs no fsync.
        cmd.CommandText = "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;";
        cmd.ExecuteNonQuery();
    }
}
