using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using Microsoft.Data.Sqlite;

namespace KtZeroTrust.Registry.Sqlite;

/// <summary>
/// The embedded device registry on SQLite. Every write bumps <c>registry_version</c> in the same
/// transaction, so pollers (the allow list) see a change exactly when it commits.
/// </summary>
public sealed partial class SqliteDeviceRegistry : IDeviceRegistry
{
    private readonly string _connectionString;
    private readonly TimeProvider _timeProvider;

    public SqliteDeviceRegistry(string databasePath, TimeProvider timeProvider)
    {
        ArgumentException.ThrowIfNullOrEmpty(databasePath);
        _timeProvider = timeProvider;
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

        using var connection = Open();
        SqliteMigrations.Apply(connection);
    }

    public async Task<ManifestImportResult> ImportAsync(IReadOnlyList<ManifestDevice> devices, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(devices);
        foreach (var d in devices)
        {
            DeviceSerial.Validate(d.Serial);
        }

        await using var connection = await OpenAsync(cancellationToken);
        await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
        var imported = new List<string>();
        var known = new List<string>();
        var now = Now();
        foreach (var d in devices)
        {
            await using var insert = Command(connection, tx, """
                INSERT INTO devices (serial, model, state, site, idevid_sha256, created_at, updated_at, row_version)
                VALUES ($serial, $model, $state, $site, $idevid, $now, $now, (SELECT version + 1 FROM registry_version WHERE id = 1))
                ON CONFLICT(serial) DO NOTHING;
                """);
            insert.Parameters.AddWithValue("$serial", d.Serial);
            insert.Parameters.AddWithValue("$model", d.Model);
            insert.Parameters.AddWithValue("$state", nameof(DeviceLifecycleState.Provisioned));
            insert.Parameters.AddWithValue("$site", (object?)d.Site ?? DBNull.Value);
            insert.Parameters.AddWithValue("$idevid", (object?)d.IDevIdSha256 ?? DBNull.Value);
            insert.Parameters.AddWithValue("$now", now);
            int rows;
            try
            {
                rows = await insert.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode == 19)
            {
                throw new RegistryException(RegistryException.CertificateConflict, $"Device '{d.Serial}': its IDevID certificate is already registered under another serial.");
            }

            if (rows == 0)
            {
                known.Add(d.Serial);
                continue;
            }

            imported.Add(d.Serial);
            await InsertTransitionAsync(connection, tx, d.Serial, null, DeviceLifecycleState.Provisioned, actor, "imported from manufacturing manifest", now, cancellationToken);
        }

        if (imported.Count > 0)
        {
            await BumpVersionAsync(connection, tx, cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        return new ManifestImportResult(imported, known);
    }

    public async Task<DeviceRecord?> FindAsync(string serial, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        return await FindAsync(connection, null, serial, cancellationToken);
    }

    public async Task<IReadOnlyList<DeviceRecord>> ListAsync(DeviceLifecycleState? state = null, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, $"{DeviceSelect} WHERE ($state IS NULL OR state = $state) ORDER BY serial;");
        cmd.Parameters.AddWithValue("$state", state is null ? DBNull.Value : state.Value.ToString());
        var list = new List<DeviceRecord>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            list.Add(ReadDevice(reader));
        }

        return list;
    }

    public async Task<DeviceRecord> TransitionAsync(string serial, DeviceLifecycleState target, string actor, string reason, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(reason))
        {
            throw new RegistryException(RegistryException.InvalidInput, "A lifecycle change needs a reason.");
        }

        await using var connection = await OpenAsync(cancellationToken);
        await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
        var device = await FindAsync(connection, tx, serial, cancellationToken)
            ?? throw new RegistryException(RegistryException.DeviceNotFound, $"No device with serial '{serial}'.");
        if (!DeviceLifecycle.CanTransition(device.State, target))
        {
            throw new RegistryException(RegistryException.TransitionNotAllowed, $"Device '{serial}' is {device.State}; it cannot become {target}.");
        }

        var now = Now();
        var version = await BumpVersionAsync(connection, tx, cancellationToken);
        await SetStateAsync(connection, tx, serial, target, now, version, cancellationToken);
        if (target is DeviceLifecycleState.Revoked or DeviceLifecycleState.Decommissioned)
        {
            await using var revoke = Command(connection, tx, "UPDATE device_certificates SET revoked_at = $now, revocation_reason = 'revoked', row_version = $version WHERE serial = $serial AND revoked_at IS NULL;");
            revoke.Parameters.AddWithValue("$now", now);
            revoke.Parameters.AddWithValue("$version", version);
            revoke.Parameters.AddWithValue("$serial", serial);
            await revoke.ExecuteNonQueryAsync(cancellationToken);
        }

        await InsertTransitionAsync(connection, tx, serial, device.State, target, actor, reason, now, cancellationToken);
        await tx.CommitAsync(cancellationToken);
        return device with { State = target, UpdatedAt = new DateTimeOffset(now, TimeSpan.Zero) };
    }

    public async Task AddCertificateAsync(DeviceCertificateRecord certificate, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (!CertificateHash.TryParse(certificate.Sha256, out _))
        {
            throw new RegistryException(RegistryException.InvalidInput, "The certificate hash must be 64 hexadecimal characters (SHA-256).");
        }

        await using var connection = await OpenAsync(cancellationToken);
        await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
        var device = await FindAsync(connection, tx, certificate.DeviceSerial, cancellationToken)
            ?? throw new RegistryException(RegistryException.DeviceNotFound, $"No device with serial '{certificate.DeviceSerial}'.");
        if (device.State is DeviceLifecycleState.Revoked or DeviceLifecycleState.Decommissioned)
        {
            throw new RegistryException(RegistryException.TransitionNotAllowed, $"Device '{device.Serial}' is {device.State}; no certificate may be issued to it.");
        }

        var version = await BumpVersionAsync(connection, tx, cancellationToken);
        await using var insert = Command(connection, tx, """
            INSERT INTO device_certificates (sha256, serial, cert_serial, not_before, not_after, issued_at, row_version)
            VALUES ($sha, $serial, $certSerial, $nb, $na, $issued, $version);
            """);
        insert.Parameters.AddWithValue("$version", version);
        insert.Parameters.AddWithValue("$sha", certificate.Sha256.ToLowerInvariant());
        insert.Parameters.AddWithValue("$serial", certificate.DeviceSerial);
        insert.Parameters.AddWithValue("$certSerial", certificate.CertificateSerialNumber);
        insert.Parameters.AddWithValue("$nb", certificate.NotBefore.UtcTicks);
        insert.Parameters.AddWithValue("$na", certificate.NotAfter.UtcTicks);
        insert.Parameters.AddWithValue("$issued", certificate.IssuedAt.UtcTicks);
        try
        {
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == 19)
        {
            throw new RegistryException(RegistryException.CertificateConflict, $"Certificate {certificate.Sha256} is already registered.");
        }

        if (device.State == DeviceLifecycleState.Provisioned)
        {
            var now = Now();
            await SetStateAsync(connection, tx, device.Serial, DeviceLifecycleState.Active, now, version, cancellationToken);
            await InsertTransitionAsync(connection, tx, device.Serial, device.State, DeviceLifecycleState.Active, actor, "operational certificate issued", now, cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<DeviceCertificateRecord>> GetCertificatesAsync(string serial, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, "SELECT sha256, serial, cert_serial, not_before, not_after, issued_at, revoked_at, revocation_reason FROM device_certificates WHERE serial = $serial ORDER BY issued_at;");
        cmd.Parameters.AddWithValue("$serial", serial);
        var list = new List<DeviceCertificateRecord>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            list.Add(new DeviceCertificateRecord
            {
                Sha256 = reader.GetString(0),
                DeviceSerial = reader.GetString(1),
                CertificateSerialNumber = reader.GetString(2),
                NotBefore = Time(reader.GetInt64(3)),
                NotAfter = Time(reader.GetInt64(4)),
                IssuedAt = Time(reader.GetInt64(5)),
                RevokedAt = reader.IsDBNull(6) ? null : Time(reader.GetInt64(6)),
                RevocationReason = reader.IsDBNull(7) ? null : reader.GetString(7),
            });
        }

        return list;
    }

    public async Task<IReadOnlyList<LifecycleTransitionRecord>> GetHistoryAsync(string serial, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, "SELECT serial, from_state, to_state, actor, reason, at FROM lifecycle_events WHERE serial = $serial ORDER BY id;");
        cmd.Parameters.AddWithValue("$serial", serial);
        var list = new List<LifecycleTransitionRecord>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            list.Add(new LifecycleTransitionRecord
            {
                DeviceSerial = reader.GetString(0),
                From = reader.IsDBNull(1) ? null : Enum.Parse<DeviceLifecycleState>(reader.GetString(1)),
                To = Enum.Parse<DeviceLifecycleState>(reader.GetString(2)),
                Actor = reader.GetString(3),
                Reason = reader.GetString(4),
                At = Time(reader.GetInt64(5)),
            });
        }

        return list;
    }

    public async Task<long> GetVersionAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, "SELECT version FROM registry_version WHERE id = 1;");
        return (long)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    public async Task<AllowListChanges> LoadAllowListChangesAsync(long sinceVersion, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        // One read transaction: the version and the rows come from the same snapshot.
        await using var tx = connection.BeginTransaction(deferred: true);
        await using var version = Command(connection, tx, "SELECT version FROM registry_version WHERE id = 1;");
        var current = (long)(await version.ExecuteScalarAsync(cancellationToken))!;
        await using var cmd = Command(connection, tx, $"""
            {EntrySelect} WHERE c.row_version > $since
            UNION
            {EntrySelect} WHERE d.row_version > $since;
            """);
        cmd.Parameters.AddWithValue("$since", sinceVersion);
        var list = new List<AllowListEntry>();
        await using (var reader = await cmd.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                list.Add(ReadEntry(reader));
            }
        }

        await tx.CommitAsync(cancellationToken);
        return new AllowListChanges(current, list);
    }

    public async Task<AllowListEntry?> FindAllowListEntryAsync(CertificateHash certificateHash, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, $"{EntrySelect} WHERE c.sha256 = $sha;");
        cmd.Parameters.AddWithValue("$sha", certificateHash.ToString());
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadEntry(reader) : null;
    }

    private const string EntrySelect = """
        SELECT c.sha256, c.serial, d.state, c.not_before, c.not_after, c.revoked_at, MAX(c.row_version, d.row_version)
        FROM device_certificates c JOIN devices d ON d.serial = c.serial
        """;

    private static AllowListEntry ReadEntry(SqliteDataReader reader) => new()
    {
        CertificateHash = CertificateHash.Parse(reader.GetString(0)),
        DeviceSerial = reader.GetString(1),
        State = Enum.Parse<DeviceLifecycleState>(reader.GetString(2)),
        NotBeforeUtcTicks = reader.GetInt64(3),
        NotAfterUtcTicks = reader.GetInt64(4),
        CertificateRevoked = !reader.IsDBNull(5),
        Version = reader.GetInt64(6),
    };

    private long Now() => _timeProvider.GetUtcNow().UtcTicks;

    private static DateTimeOffset Time(long ticks) => new(ticks, TimeSpan.Zero);

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        Configure(connection);
        return connection;
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        Configure(connection);
        return connection;
    }

    private static void Configure(SqliteConnection connection)
    {
        using var cmd = connection.CreateCommand();
        // WAL with synchronous=NORMAL: a commit is durable against a crash of the process, not of the machine, and costs no fsync.
        cmd.CommandText = "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;";
        cmd.ExecuteNonQuery();
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? tx, string sql)
    {
        var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        return cmd;
    }

    private static async Task<DeviceRecord?> FindAsync(SqliteConnection connection, SqliteTransaction? tx, string serial, CancellationToken cancellationToken)
    {
        await using var cmd = Command(connection, tx, $"{DeviceSelect} WHERE serial = $serial;");
        cmd.Parameters.AddWithValue("$serial", serial);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadDevice(reader) : null;
    }

    private const string DeviceSelect = "SELECT serial, model, state, site, idevid_sha256, created_at, updated_at, last_firmware_version, last_boot_counter, last_attested_at FROM devices";

    private static DeviceRecord ReadDevice(SqliteDataReader reader) => new()
    {
        Serial = reader.GetString(0),
        Model = reader.GetString(1),
        State = Enum.Parse<DeviceLifecycleState>(reader.GetString(2)),
        Site = reader.IsDBNull(3) ? null : reader.GetString(3),
        IDevIdSha256 = reader.IsDBNull(4) ? null : reader.GetString(4),
        CreatedAt = Time(reader.GetInt64(5)),
        UpdatedAt = Time(reader.GetInt64(6)),
        LastFirmwareVersion = reader.IsDBNull(7) ? null : reader.GetString(7),
        LastBootCounter = reader.IsDBNull(8) ? null : reader.GetInt64(8),
        LastAttestedAt = reader.IsDBNull(9) ? null : Time(reader.GetInt64(9)),
    };

    private static async Task SetStateAsync(SqliteConnection connection, SqliteTransaction tx, string serial, DeviceLifecycleState state, long now, long version, CancellationToken cancellationToken)
    {
        await using var cmd = Command(connection, tx, "UPDATE devices SET state = $state, updated_at = $now, row_version = $version WHERE serial = $serial;");
        cmd.Parameters.AddWithValue("$state", state.ToString());
        cmd.Parameters.AddWithValue("$version", version);
        cmd.Parameters.AddWithValue("$now", now);
        cmd.Parameters.AddWithValue("$serial", serial);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task InsertTransitionAsync(SqliteConnection connection, SqliteTransaction tx, string serial, DeviceLifecycleState? from,
        DeviceLifecycleState to, string actor, string reason, long now, CancellationToken cancellationToken)
    {
        await using var cmd = Command(connection, tx, "INSERT INTO lifecycle_events (serial, from_state, to_state, actor, reason, at) VALUES ($serial, $from, $to, $actor, $reason, $at);");
        cmd.Parameters.AddWithValue("$serial", serial);
        cmd.Parameters.AddWithValue("$from", from is null ? DBNull.Value : from.Value.ToString());
        cmd.Parameters.AddWithValue("$to", to.ToString());
        cmd.Parameters.AddWithValue("$actor", actor);
        cmd.Parameters.AddWithValue("$reason", reason);
        cmd.Parameters.AddWithValue("$at", now);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Takes the next registry version for this transaction's writes (first, so the write lock is held from here).</summary>
    private static async Task<long> BumpVersionAsync(SqliteConnection connection, SqliteTransaction tx, CancellationToken cancellationToken)
    {
        await using var cmd = Command(connection, tx, "UPDATE registry_version SET version = version + 1 WHERE id = 1 RETURNING version;");
        return (long)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }
}
