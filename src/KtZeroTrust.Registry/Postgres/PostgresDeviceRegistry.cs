using System.Data;
using System.Data.Common;
using KtZeroTrust.Registry.Sql;
using Npgsql;

namespace KtZeroTrust.Registry.Postgres;

/// <summary>
/// The device registry on PostgreSQL (Npgsql), for deployments with several attestation/console nodes. Same code as the
/// SQLite store (<see cref="SqlDeviceRegistry"/>); the schema is created or upgraded on connect.
/// </summary>
public sealed class PostgresDeviceRegistry : SqlDeviceRegistry, IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;

    private PostgresDeviceRegistry(NpgsqlDataSource dataSource, TimeProvider timeProvider)
        : base(timeProvider) => _dataSource = dataSource;

    public static async Task<PostgresDeviceRegistry> ConnectAsync(string connectionString, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        var registry = Create(connectionString, timeProvider);
        try
        {
            await registry.MigrateAsync(cancellationToken);
            return registry;
        }
        catch
        {
            await registry._dataSource.DisposeAsync();
            throw;
        }
    }

    /// <summary>The registry on a data source, without touching the database yet (no blocking work in a DI factory); <see cref="MigrateAsync"/> before use.</summary>
    public static PostgresDeviceRegistry Create(string connectionString, TimeProvider timeProvider)
        => new(NpgsqlDataSource.Create(connectionString), timeProvider);

    /// <summary>Creates or upgrades the schema.</summary>
    public Task MigrateAsync(CancellationToken cancellationToken = default) => PostgresMigrations.ApplyAsync(_dataSource, cancellationToken);

    protected override string Greatest => "GREATEST";

    protected override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
        => await _dataSource.OpenConnectionAsync(cancellationToken);

    protected override async Task<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken);
    }

    protected override async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var tx = await base.BeginWriteAsync(connection, cancellationToken);
        await using var lockRow = Command(connection, tx, "SELECT version FROM registry_version WHERE id = 1 FOR UPDATE;");
        await lockRow.ExecuteScalarAsync(cancellationToken);
        return tx;
    }

    protected override bool IsUniqueViolation(DbException exception) => exception is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();
}

/// <summary>Schema steps for PostgreSQL, applied in order under an advisory lock (several nodes may start at once).</summary>
internal static class PostgresMigrations
{
    private const long LockKey = 0x4b545a54; // "KTZT"

    private static readonly string[] Steps =
    [
        """
        CREATE TABLE devices (
            serial TEXT PRIMARY KEY, model TEXT NOT NULL, state TEXT NOT NULL, site TEXT NULL, idevid_sha256 TEXT NULL UNIQUE,
            created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, row_version BIGINT NOT NULL DEFAULT 0,
            last_firmware_version TEXT NULL, last_boot_counter BIGINT NULL, last_attested_at BIGINT NULL);
        CREATE INDEX ix_devices_row_version ON devices(row_version);
        CREATE TABLE device_certificates (
            sha256 TEXT PRIMARY KEY, serial TEXT NOT NULL REFERENCES devices(serial), cert_serial TEXT NOT NULL,
            not_before BIGINT NOT NULL, not_after BIGINT NOT NULL, issued_at BIGINT NOT NULL, revoked_at BIGINT NULL,
            row_version BIGINT NOT NULL DEFAULT 0, spki_sha256 TEXT NULL, revocation_reason TEXT NULL);
        CREATE INDEX ix_device_certificates_serial ON device_certificates(serial);
        CREATE INDEX ix_device_certificates_row_version ON device_certificates(row_version);
        CREATE INDEX ix_device_certificates_spki ON device_certificates(spki_sha256);
        CREATE TABLE lifecycle_events (
            id BIGSERIAL PRIMARY KEY, serial TEXT NOT NULL REFERENCES devices(serial), from_state TEXT NULL, to_state TEXT NOT NULL,
            actor TEXT NOT NULL, reason TEXT NOT NULL, at BIGINT NOT NULL);
        CREATE INDEX ix_lifecycle_events_serial ON lifecycle_events(serial);
        CREATE TABLE registry_version (id INT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL);
        INSERT INTO registry_version (id, version) VALUES (1, 0);
        CREATE TABLE sites (id TEXT PRIMARY KEY, latitude DOUBLE PRECISION NOT NULL, longitude DOUBLE PRECISION NOT NULL,
            radius_m DOUBLE PRECISION NOT NULL, neighbour_cells TEXT NOT NULL, allowed_prefixes TEXT NOT NULL);
        CREATE TABLE firmware_reference (model TEXT NOT NULL, version TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (model, version));
        CREATE TABLE model_policy (model TEXT PRIMARY KEY, minimum_version TEXT NULL, forbidden_flags TEXT NOT NULL);
        CREATE TABLE attestations (
            id TEXT PRIMARY KEY, serial TEXT NOT NULL, nonce TEXT NOT NULL, passed BIGINT NOT NULL, reasons TEXT NOT NULL,
            firmware_version TEXT NULL, boot_counter BIGINT NULL, latitude DOUBLE PRECISION NULL, longitude DOUBLE PRECISION NULL,
            source_address TEXT NULL, client_sha256 TEXT NULL, token_sha256 TEXT NULL, at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT NULL);
        CREATE INDEX ix_attestations_serial_nonce ON attestations(serial, nonce);
        """,

        // 2: the SOC console's alert acknowledgements.
        """
        CREATE TABLE alert_acknowledgements (alert_id TEXT PRIMARY KEY, acknowledged_by TEXT NOT NULL, acknowledged_at BIGINT NOT NULL, note TEXT NULL);
        """,

        // 3: OCSP asks by certificate serial number.
        """
        CREATE INDEX ix_device_certificates_cert_serial ON device_certificates(cert_serial);
        """,

        // 4: alert cases (assignments, notes, actions), appended, read per alert.
        """
        CREATE TABLE alert_case_entries (id BIGSERIAL PRIMARY KEY, alert_id TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL, at BIGINT NOT NULL, text TEXT NULL);
        CREATE INDEX ix_alert_case_entries_alert ON alert_case_entries(alert_id, id);
        """,
    ];

    public static async Task ApplyAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await Execute(connection, tx, $"SELECT pg_advisory_xact_lock({LockKey}); CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL);", cancellationToken);
        await using var read = new NpgsqlCommand("SELECT COALESCE(MAX(version), 0) FROM schema_version;", connection, tx);
        var current = Convert.ToInt32(await read.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
        if (current > Steps.Length)
        {
            throw new InvalidOperationException($"The registry database is at schema version {current}, newer than this build knows ({Steps.Length}). Upgrade KtZeroTrust.");
        }

        for (var v = current; v < Steps.Length; v++)
        {
            await Execute(connection, tx, Steps[v], cancellationToken);
            await Execute(connection, tx, $"DELETE FROM schema_version; INSERT INTO schema_version (version) VALUES ({v + 1});", cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
    }

    private static async Task Execute(NpgsqlConnection connection, NpgsqlTransaction tx, string sql, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(sql, connection, tx);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }
}
