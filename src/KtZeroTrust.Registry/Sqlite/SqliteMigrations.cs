using Microsoft.Data.Sqlite;

namespace KtZeroTrust.Registry.Sqlite;

/// <summary>Schema migrations, applied in order on open; <c>PRAGMA user_version</c> records how far a file got.</summary>
internal static class SqliteMigrations
{
    private static readonly string[] Steps =
    [
        // 1: devices, their operational certificates, lifecycle history, and a change counter for pollers.
        """
        CREATE TABLE devices (
            serial      TEXT PRIMARY KEY NOT NULL,
            model       TEXT NOT NULL,
            state       TEXT NOT NULL,
            site        TEXT NULL,
            idevid_sha256 TEXT NULL UNIQUE,
            created_at  INTEGER NOT NULL,
            updated_at  INTEGER NOT NULL
        );
        CREATE TABLE device_certificates (
            sha256      TEXT PRIMARY KEY NOT NULL,
            serial      TEXT NOT NULL REFERENCES devices(serial),
            cert_serial TEXT NOT NULL,
            not_before  INTEGER NOT NULL,
            not_after   INTEGER NOT NULL,
            issued_at   INTEGER NOT NULL,
            revoked_at  INTEGER NULL
        );
        CREATE INDEX ix_device_certificates_serial ON device_certificates(serial);
        CREATE TABLE lifecycle_events (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            serial      TEXT NOT NULL REFERENCES devices(serial),
            from_state  TEXT NULL,
            to_state    TEXT NOT NULL,
            actor       TEXT NOT NULL,
            reason      TEXT NOT NULL,
            at          INTEGER NOT NULL
        );
        CREATE INDEX ix_lifecycle_events_serial ON lifecycle_events(serial);
        CREATE TABLE registry_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
        INSERT INTO registry_version (id, version) VALUES (1, 0);
        """,

        // 2: the registry version that last changed each row, so readers fetch only what changed since they looked.
        """
        ALTER TABLE devices ADD COLUMN row_version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE device_certificates ADD COLUMN row_version INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX ix_devices_row_version ON devices(row_version);
        CREATE INDEX ix_device_certificates_row_version ON device_certificates(row_version);
        """,

        // 3: attestation and enrollment: install sites, reference values, appraisals, one key per device.
        """
        ALTER TABLE devices ADD COLUMN last_firmware_version TEXT NULL;
        ALTER TABLE devices ADD COLUMN last_boot_counter INTEGER NULL;
        ALTER TABLE devices ADD COLUMN last_attested_at INTEGER NULL;
        ALTER TABLE device_certificates ADD COLUMN spki_sha256 TEXT NULL;
        ALTER TABLE device_certificates ADD COLUMN revocation_reason TEXT NULL;
        CREATE INDEX ix_device_certificates_spki ON device_certificates(spki_sha256);
        CREATE TABLE sites (
            id              TEXT PRIMARY KEY NOT NULL,
            latitude        REAL NOT NULL,
            longitude       REAL NOT NULL,
            radius_m        REAL NOT NULL,
            neighbour_cells TEXT NOT NULL,
            allowed_prefixes TEXT NOT NULL
        );
        CREATE TABLE firmware_reference (
            model   TEXT NOT NULL,
            version TEXT NOT NULL,
            sha256  TEXT NOT NULL,
            PRIMARY KEY (model, version)
        );
        CREATE TABLE model_policy (
            model           TEXT PRIMARY KEY NOT NULL,
            minimum_version TEXT NULL,
            forbidden_flags TEXT NOT NULL
        );
        CREATE TABLE attestations (
            id          TEXT PRIMARY KEY NOT NULL,
            serial      TEXT NOT NULL,
            nonce       TEXT NOT NULL,
            passed      INTEGER NOT NULL,
            reasons     TEXT NOT NULL,
            firmware_version TEXT NULL,
            boot_counter INTEGER NULL,
            latitude    REAL NULL,
            longitude   REAL NULL,
            source_address TEXT NULL,
            client_sha256 TEXT NULL,
            token_sha256 TEXT NULL,
            at          INTEGER NOT NULL,
            expires_at  INTEGER NOT NULL,
            used_at     INTEGER NULL
        );
        CREATE INDEX ix_attestations_serial_nonce ON attestations(serial, nonce);
        """,

        // 4: the SOC console's alert acknowledgements (shared by every console node; they were a side file before).
        """
        CREATE TABLE alert_acknowledgements (
            alert_id        TEXT PRIMARY KEY NOT NULL,
            acknowledged_by TEXT NOT NULL,
            acknowledged_at INTEGER NOT NULL,
            note            TEXT NULL
        );
        """,

        // 5: OCSP asks by certificate serial number.
        """
        CREATE INDEX ix_device_certificates_cert_serial ON device_certificates(cert_serial);
        """,

        // 6: alert cases (assignments, notes, actions), appended, read per alert.
        """
        CREATE TABLE alert_case_entries (
            id       INTEGER PRIMARY KEY,
            alert_id TEXT NOT NULL,
            action   TEXT NOT NULL,
            actor    TEXT NOT NULL,
            at       INTEGER NOT NULL,
            text     TEXT NULL
        );
        CREATE INDEX ix_alert_case_entries_alert ON alert_case_entries(alert_id, id);
        """,
    ];

    public static int Latest => Steps.Length;

    public static void Apply(SqliteConnection connection)
    {
        using (var wal = connection.CreateCommand())
        {
            // WAL lets the gateway read while ztctl writes from another process.
            wal.CommandText = "PRAGMA journal_mode=WAL;";
            wal.ExecuteNonQuery();
        }

        var current = UserVersion(connection);
        if (current > Steps.Length)
        {
            throw new InvalidOperationException($"The registry database is at schema version {current}, newer than this build knows ({Steps.Length}). Upgrade KtZeroTrust.");
        }

        for (var v = current; v < Steps.Length; v++)
        {
            using var tx = connection.BeginTransaction();
            using var cmd = connection.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = Steps[v] + $"\nPRAGMA user_version = {v + 1};";
            cmd.ExecuteNonQuery();
            tx.Commit();
        }
    }

    private static long UserVersion(SqliteConnection connection)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "PRAGMA user_version;";
        return (long)cmd.ExecuteScalar()!;
    }
}
