using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using System.Data.Common;

namespace KtZeroTrust.Registry.Sql;

/// <summary>
/// The device registry on a SQL database (ADO.NET): SQLite (embedded) and PostgreSQL share this code and differ only in
/// connections, schema and a few dialect points. Every write bumps <c>registry_version</c> in its transaction and
/// stamps the rows it changes with it, so readers (the allow list) fetch exactly what changed since they looked.
/// </summary>
public abstract partial class SqlDeviceRegistry(TimeProvider timeProvider) : IDeviceRegistry
{
    /// <summary>An open connection (pooled by the provider).</summary>
    protected abstract Task<DbConnection> OpenAsync(CancellationToken cancellationToken);

    /// <summary>A read transaction that sees one consistent snapshot.</summary>
    protected abstract Task<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>
    /// A write transaction. Writers must be serialised from their first read (a transition checks the current state
    /// before changing it): SQLite's BEGIN IMMEDIATE does that; PostgreSQL locks the version row.
    /// </summary>
    protected virtual async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return await connection.BeginTransactionAsync(cancellationToken);
    }

    protected abstract bool IsUniqueViolation(DbException exception);

    /// <summary>The two-argument maximum: <c>MAX</c> in SQLite, <c>GREATEST</c> in PostgreSQL.</summary>
    protected virtual string Greatest => "MAX";

    public async Task<ManifestImportResult> ImportAsync(IReadOnlyList<ManifestDevice> devices, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(devices);
        foreach (var d in devices)
        {
            DeviceSerial.Validate(d.Serial);
        }

        await using var connection = await OpenAsync(cancellationToken);
        await using var tx = await BeginWriteAsync(connection, cancellationToken);
        var imported = new List<string>();
        var known = new List<string>();
        var now = Now();
        foreach (var d in devices)
        {
            await using var insert = Command(connection, tx, """
                INSERT INTO devices (serial, model, state, site, idevid_sha256, created_at, updated_at, row_version)
                VALUES (@serial, @model, @state, @site, @idevid, @now, @now, (SELECT version + 1 FROM registry_version WHERE id = 1))
                ON CONFLICT(serial) DO NOTHING;
                """);
            Add(insert, "@serial", d.Serial);
            Add(insert, "@model", d.Model);
            Add(insert, "@state", nameof(DeviceLifecycleState.Provisioned));
            Add(insert, "@site", (object?)d.Site ?? DBNull.Value);
            Add(insert, "@idevid", (object?)d.IDevIdSha256 ?? DBNull.Value);
            Add(insert, "@now", now);
            int rows;
            try
            {
                rows = await insert.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (DbException ex) when (IsUniqueViolation(ex))
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
        await using var cmd = Command(connection, null, state is null ? $"{DeviceSelect} ORDER BY serial;" : $"{DeviceSelect} WHERE state = @state ORDER BY serial;");
        Add(cmd, "@state", state?.ToString());
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
        await using var tx = await BeginWriteAsync(connection, cancellationToken);
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
            await using var revoke = Command(connection, tx, "UPDATE device_certificates SET revoked_at = @now, revocation_reason = 'revoked', row_version = @version WHERE serial = @serial AND revoked_at IS NULL;");
            Add(revoke, "@now", now);
            Add(revoke, "@version", version);
            Add(revoke, "@serial", serial);
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
        await using var tx = await BeginWriteAsync(connection, cancellationToken);
        var device = await FindAsync(connection, tx, certificate.DeviceSerial, cancellationToken)
            ?? throw new RegistryException(RegistryException.DeviceNotFound, $"No device with serial '{certificate.DeviceSerial}'.");
        if (device.State is DeviceLifecycleState.Revoked or DeviceLifecycleState.Decommissioned)
        {
            throw new RegistryException(RegistryException.TransitionNotAllowed, $"Device '{device.Serial}' is {device.State}; no certificate may be issued to it.");
        }

        var version = await BumpVersionAsync(connection, tx, cancellationToken);
        await InsertCertificateAsync(connection, tx, certificate, device.Serial, version, cancellationToken);

        if (device.State == DeviceLifecycleState.Provisioned)
        {
            var now = Now();
            await SetStateAsync(connection, tx, device.Serial, DeviceLifecycleState.Active, now, version, cancellationToken);
            await InsertTransitionAsync(connection, tx, device.Serial, device.State, DeviceLifecycleState.Active, actor, "operational certificate issued", now, cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Every issuance path's one insert: the key hash is required and a key belongs to one device (KeyShared
    /// otherwise), whatever issued the certificate.
    /// </summary>
    private async Task InsertCertificateAsync(DbConnection connection, DbTransaction tx, DeviceCertificateRecord certificate, string serial, long version, CancellationToken cancellationToken)
    {
        if (!CertificateHash.TryParse(certificate.PublicKeySha256, out _)) // same shape: 32 bytes in hex
        {
            throw new RegistryException(RegistryException.InvalidInput, "The public-key hash must be 64 hexadecimal characters (SHA-256 of the SubjectPublicKeyInfo).");
        }

        var spki = certificate.PublicKeySha256.ToLowerInvariant();
        await using (var owner = Command(connection, tx, "SELECT serial FROM device_certificates WHERE spki_sha256 = @spki AND serial <> @serial LIMIT 1;"))
        {
            Add(owner, "@spki", spki);
            Add(owner, "@serial", serial);
            if (await owner.ExecuteScalarAsync(cancellationToken) is string other)
            {
                throw new RegistryException(RegistryException.KeyShared, $"The public key is already bound to device '{other}'.");
            }
        }

        await using var insert = Command(connection, tx, """
            INSERT INTO device_certificates (sha256, serial, cert_serial, not_before, not_after, issued_at, row_version, spki_sha256)
            VALUES (@sha, @serial, @certSerial, @nb, @na, @issued, @version, @spki);
            """);
        Add(insert, "@spki", spki);
        Add(insert, "@version", version);
        Add(insert, "@sha", certificate.Sha256.ToLowerInvariant());
        Add(insert, "@serial", serial);
        Add(insert, "@certSerial", certificate.CertificateSerialNumber);
        Add(insert, "@nb", certificate.NotBefore.UtcTicks);
        Add(insert, "@na", certificate.NotAfter.UtcTicks);
        Add(insert, "@issued", certificate.IssuedAt.UtcTicks);
        try
        {
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (DbException ex) when (IsUniqueViolation(ex))
        {
            throw new RegistryException(RegistryException.CertificateConflict, $"Certificate {certificate.Sha256} is already registered.");
        }
    }

    private const string CertificateColumns = "c.sha256, c.serial, c.cert_serial, c.not_before, c.not_after, c.issued_at, c.revoked_at, c.revocation_reason, c.spki_sha256";

    public async Task<IReadOnlyList<DeviceCertificateRecord>> GetCertificatesAsync(string serial, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, $"SELECT {CertificateColumns} FROM device_certificates c WHERE c.serial = @serial ORDER BY c.issued_at;");
        Add(cmd, "@serial", serial);
        var list = new List<DeviceCertificateRecord>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            list.Add(ReadCertificate(reader));
        }

        return list;
    }

    public async Task<CertificateStanding?> FindCertificateBySerialNumberAsync(string certificateSerialNumber, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, $"SELECT {CertificateColumns}, d.state, d.updated_at FROM device_certificates c JOIN devices d ON d.serial = c.serial WHERE c.cert_serial = @certSerial LIMIT 2;");
        Add(cmd, "@certSerial", certificateSerialNumber);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        var standing = new CertificateStanding(ReadCertificate(reader), Enum.Parse<DeviceLifecycleState>(reader.GetString(9), ignoreCase: true), Time(reader.GetInt64(10)));
        // Serial numbers are random 128-bit values; two rows with one would be a defect of the issuer: answer nothing rather than guess.
        return await reader.ReadAsync(cancellationToken) ? null : standing;
    }

    private static DeviceCertificateRecord ReadCertificate(DbDataReader reader) => new()
    {
        Sha256 = reader.GetString(0),
        DeviceSerial = reader.GetString(1),
        CertificateSerialNumber = reader.GetString(2),
        NotBefore = Time(reader.GetInt64(3)),
        NotAfter = Time(reader.GetInt64(4)),
        IssuedAt = Time(reader.GetInt64(5)),
        RevokedAt = reader.IsDBNull(6) ? null : Time(reader.GetInt64(6)),
        RevocationReason = reader.IsDBNull(7) ? null : reader.GetString(7),
        PublicKeySha256 = reader.IsDBNull(8) ? "" : reader.GetString(8), // empty: recorded before key hashes were kept, not yet backfilled
    };

    /// <summary>
    /// Fills in the public-key hash of certificates recorded without one (issued outside EST before it was kept). The
    /// registry keeps certificate hashes, not certificates, so the certificates are read from where they were written
    /// (the development PKI at start, <c>ztctl cert backfill-keys</c> for the rest). Returns how many rows were filled
    /// and every key found bound to more than one device, which the caller reports: that is a shared credential.
    /// </summary>
    public async Task<(int Filled, IReadOnlyList<string> SharedKeys)> BackfillPublicKeysAsync(IEnumerable<System.Security.Cryptography.X509Certificates.X509Certificate2> certificates, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(certificates);
        await using var connection = await OpenAsync(cancellationToken);
        await using var tx = await BeginWriteAsync(connection, cancellationToken);
        var filled = 0;
        foreach (var certificate in certificates)
        {
            await using var update = Command(connection, tx, "UPDATE device_certificates SET spki_sha256 = @spki WHERE sha256 = @sha AND spki_sha256 IS NULL;");
            Add(update, "@spki", PublicKeyHash.Hex(certificate.PublicKey));
            Add(update, "@sha", CertificateHash.Of(certificate).ToString());
            filled += await update.ExecuteNonQueryAsync(cancellationToken);
        }

        var shared = new List<string>();
        await using (var query = Command(connection, tx, "SELECT spki_sha256 FROM device_certificates WHERE spki_sha256 IS NOT NULL GROUP BY spki_sha256 HAVING COUNT(DISTINCT serial) > 1;"))
        await using (var reader = await query.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                shared.Add(reader.GetString(0));
            }
        }

        await tx.CommitAsync(cancellationToken);
        return (filled, shared);
    }

    public async Task<IReadOnlyList<LifecycleTransitionRecord>> GetHistoryAsync(string serial, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, "SELECT serial, from_state, to_state, actor, reason, at FROM lifecycle_events WHERE serial = @serial ORDER BY id;");
        Add(cmd, "@serial", serial);
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
        await using var tx = await BeginSnapshotAsync(connection, cancellationToken);
        await using var version = Command(connection, tx, "SELECT version FROM registry_version WHERE id = 1;");
        var current = (long)(await version.ExecuteScalarAsync(cancellationToken))!;
        await using var cmd = Command(connection, tx, $"""
            {EntrySelect} WHERE c.row_version > @since
            UNION
            {EntrySelect} WHERE d.row_version > @since;
            """);
        Add(cmd, "@since", sinceVersion);
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
        await using var cmd = Command(connection, null, $"{EntrySelect} WHERE c.sha256 = @sha;");
        Add(cmd, "@sha", certificateHash.ToString());
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadEntry(reader) : null;
    }

    private string EntrySelect => $"""
        SELECT c.sha256, c.serial, d.state, c.not_before, c.not_after, c.revoked_at, {Greatest}(c.row_version, d.row_version), d.model, d.site,
            CASE WHEN d.state <> 'Active' THEN (SELECT e.actor || ': ' || e.reason FROM lifecycle_events e WHERE e.serial = d.serial ORDER BY e.id DESC LIMIT 1) END
        FROM device_certificates c JOIN devices d ON d.serial = c.serial
        """;

    private static AllowListEntry ReadEntry(DbDataReader reader) => new()
    {
        CertificateHash = CertificateHash.Parse(reader.GetString(0)),
        DeviceSerial = reader.GetString(1),
        State = Enum.Parse<DeviceLifecycleState>(reader.GetString(2)),
        NotBeforeUtcTicks = reader.GetInt64(3),
        NotAfterUtcTicks = reader.GetInt64(4),
        CertificateRevoked = !reader.IsDBNull(5),
        Version = reader.GetInt64(6),
        Model = reader.IsDBNull(7) ? null : reader.GetString(7),
        Site = reader.IsDBNull(8) ? null : reader.GetString(8),
        StateReason = reader.IsDBNull(9) ? null : reader.GetString(9),
    };

    private long Now() => timeProvider.GetUtcNow().UtcTicks;

    private static DateTimeOffset Time(long ticks) => new(ticks, TimeSpan.Zero);

    /// <summary>Adds a parameter (null becomes DBNull).</summary>
    protected static void Add(DbCommand command, string name, object? value)
    {
        ArgumentNullException.ThrowIfNull(command);
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
    }

    protected static DbCommand Command(DbConnection connection, DbTransaction? tx, string sql)
    {
        var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        return cmd;
    }

    private static async Task<DeviceRecord?> FindAsync(DbConnection connection, DbTransaction? tx, string serial, CancellationToken cancellationToken)
    {
        await using var cmd = Command(connection, tx, $"{DeviceSelect} WHERE serial = @serial;");
        Add(cmd, "@serial", serial);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadDevice(reader) : null;
    }

    private const string DeviceSelect = "SELECT serial, model, state, site, idevid_sha256, created_at, updated_at, last_firmware_version, last_boot_counter, last_attested_at FROM devices";

    private static DeviceRecord ReadDevice(DbDataReader reader) => new()
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

    private static async Task SetStateAsync(DbConnection connection, DbTransaction tx, string serial, DeviceLifecycleState state, long now, long version, CancellationToken cancellationToken)
    {
        await using var cmd = Command(connection, tx, "UPDATE devices SET state = @state, updated_at = @now, row_version = @version WHERE serial = @serial;");
        Add(cmd, "@state", state.ToString());
        Add(cmd, "@version", version);
        Add(cmd, "@now", now);
        Add(cmd, "@serial", serial);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task InsertTransitionAsync(DbConnection connection, DbTransaction tx, string serial, DeviceLifecycleState? from,
        DeviceLifecycleState to, string actor, string reason, long now, CancellationToken cancellationToken)
    {
        await using var cmd = Command(connection, tx, "INSERT INTO lifecycle_events (serial, from_state, to_state, actor, reason, at) VALUES (@serial, @from, @to, @actor, @reason, @at);");
        Add(cmd, "@serial", serial);
        Add(cmd, "@from", from is null ? DBNull.Value : from.Value.ToString());
        Add(cmd, "@to", to.ToString());
        Add(cmd, "@actor", actor);
        Add(cmd, "@reason", reason);
        Add(cmd, "@at", now);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Takes the next registry version for this transaction's writes (first, so the write lock is held from here).</summary>
    private static async Task<long> BumpVersionAsync(DbConnection connection, DbTransaction tx, CancellationToken cancellationToken)
    {
        await using var cmd = Command(connection, tx, "UPDATE registry_version SET version = version + 1 WHERE id = 1 RETURNING version;");
        return (long)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }
}
