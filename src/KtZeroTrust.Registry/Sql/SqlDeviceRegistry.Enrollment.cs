
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using System.Data.Common;

namespace KtZeroTrust.Registry.Sql;

/// <summary>Reference values, attestation results and enrollment.</summary>
public abstract partial class SqlDeviceRegistry
{
    public async Task ImportReferenceValuesAsync(ReferenceValues values, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        foreach (var site in values.Sites)
        {
            if (string.IsNullOrWhiteSpace(site.Id) || site.RadiusMeters <= 0 || Math.Abs(site.Latitude) > 90 || Math.Abs(site.Longitude) > 180)
            {
                throw new RegistryException(RegistryException.InvalidInput, $"Site '{site.Id}': an id, a latitude in [-90, 90], a longitude in [-180, 180] and a positive radius are required.");
            }
        }

        foreach (var firmware in values.Firmware)
        {
            if (string.IsNullOrWhiteSpace(firmware.Model) || string.IsNullOrWhiteSpace(firmware.Version) || !CertificateHash.TryParse(firmware.Sha256, out _))
            {
                throw new RegistryException(RegistryException.InvalidInput, $"Firmware '{firmware.Model} {firmware.Version}': model, version and a 64-hex SHA-256 are required.");
            }
        }

        await using var connection = await OpenAsync(cancellationToken);
        await using var tx = await BeginWriteAsync(connection, cancellationToken);
        foreach (var site in values.Sites)
        {
            await using var cmd = Command(connection, tx, """
                INSERT INTO sites (id, latitude, longitude, radius_m, neighbour_cells, allowed_prefixes) VALUES (@id, @lat, @lon, @r, @cells, @prefixes)
                ON CONFLICT(id) DO UPDATE SET latitude = @lat, longitude = @lon, radius_m = @r, neighbour_cells = @cells, allowed_prefixes = @prefixes;
                """);
            Add(cmd, "@id", site.Id);
            Add(cmd, "@lat", site.Latitude);
            Add(cmd, "@lon", site.Longitude);
            Add(cmd, "@r", site.RadiusMeters);
            Add(cmd, "@cells", string.Join(',', site.NeighbourCells));
            Add(cmd, "@prefixes", string.Join(',', site.AllowedPrefixes));
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }

        foreach (var firmware in values.Firmware)
        {
            await using var cmd = Command(connection, tx, """
                INSERT INTO firmware_reference (model, version, sha256) VALUES (@model, @version, @sha)
                ON CONFLICT(model, version) DO UPDATE SET sha256 = @sha;
                """);
            Add(cmd, "@model", firmware.Model);
            Add(cmd, "@version", firmware.Version);
            Add(cmd, "@sha", firmware.Sha256.ToLowerInvariant());
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }

        foreach (var model in values.Models)
        {
            await using var cmd = Command(connection, tx, """
                INSERT INTO model_policy (model, minimum_version, forbidden_flags) VALUES (@model, @min, @flags)
                ON CONFLICT(model) DO UPDATE SET minimum_version = @min, forbidden_flags = @flags;
                """);
            Add(cmd, "@model", model.Model);
            Add(cmd, "@min", (object?)model.MinimumVersion ?? DBNull.Value);
            Add(cmd, "@flags", string.Join(',', model.ForbiddenFlags));
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }

        await BumpVersionAsync(connection, tx, cancellationToken);
        await tx.CommitAsync(cancellationToken);
    }

    public async Task<Site?> FindSiteAsync(string id, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, "SELECT id, latitude, longitude, radius_m, neighbour_cells, allowed_prefixes FROM sites WHERE id = @id;");
        Add(cmd, "@id", id);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new Site
            {
                Id = reader.GetString(0),
                Latitude = reader.GetDouble(1),
                Longitude = reader.GetDouble(2),
                RadiusMeters = reader.GetDouble(3),
                NeighbourCells = List(reader.GetString(4)),
                AllowedPrefixes = List(reader.GetString(5)),
            }
            : null;
    }

    public async Task<IReadOnlyList<FirmwareReference>> GetFirmwareAsync(string model, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, "SELECT model, version, sha256 FROM firmware_reference WHERE model = @model;");
        Add(cmd, "@model", model);
        var list = new List<FirmwareReference>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            list.Add(new FirmwareReference { Model = reader.GetString(0), Version = reader.GetString(1), Sha256 = reader.GetString(2) });
        }

        return list;
    }

    public async Task<ModelPolicy?> FindModelPolicyAsync(string model, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, "SELECT model, minimum_version, forbidden_flags FROM model_policy WHERE model = @model;");
        Add(cmd, "@model", model);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new ModelPolicy { Model = reader.GetString(0), MinimumVersion = reader.IsDBNull(1) ? null : reader.GetString(1), ForbiddenFlags = List(reader.GetString(2)) }
            : null;
    }

    public async Task RecordAttestationAsync(AttestationRecord attestation, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(attestation);
        await using var connection = await OpenAsync(cancellationToken);
        await using var tx = await BeginWriteAsync(connection, cancellationToken);
        await using (var insert = Command(connection, tx, """
            INSERT INTO attestations (id, serial, nonce, passed, reasons, firmware_version, boot_counter, latitude, longitude, source_address, client_sha256, token_sha256, at, expires_at)
            VALUES (@id, @serial, @nonce, @passed, @reasons, @fw, @boot, @lat, @lon, @src, @client, @token, @at, @exp);
            """))
        {
            Add(insert, "@id", attestation.Id);
            Add(insert, "@serial", attestation.Serial);
            Add(insert, "@nonce", attestation.Nonce);
            Add(insert, "@passed", attestation.Passed ? 1 : 0);
            Add(insert, "@reasons", string.Join(',', attestation.Reasons));
            Add(insert, "@fw", (object?)attestation.FirmwareVersion ?? DBNull.Value);
            Add(insert, "@boot", (object?)attestation.BootCounter ?? DBNull.Value);
            Add(insert, "@lat", (object?)attestation.Latitude ?? DBNull.Value);
            Add(insert, "@lon", (object?)attestation.Longitude ?? DBNull.Value);
            Add(insert, "@src", (object?)attestation.SourceAddress ?? DBNull.Value);
            Add(insert, "@client", (object?)attestation.ClientCertificateSha256 ?? DBNull.Value);
            Add(insert, "@token", (object?)attestation.EnrollmentTokenSha256 ?? DBNull.Value);
            Add(insert, "@at", attestation.At.UtcTicks);
            Add(insert, "@exp", attestation.ExpiresAt.UtcTicks);
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }

        if (attestation.Passed)
        {
            await using var update = Command(connection, tx, "UPDATE devices SET last_firmware_version = @fw, last_boot_counter = @boot, last_attested_at = @at WHERE serial = @serial;");
            Add(update, "@fw", (object?)attestation.FirmwareVersion ?? DBNull.Value);
            Add(update, "@boot", (object?)attestation.BootCounter ?? DBNull.Value);
            Add(update, "@at", attestation.At.UtcTicks);
            Add(update, "@serial", attestation.Serial);
            await update.ExecuteNonQueryAsync(cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
    }

    public async Task<AttestationRecord?> FindUsableAttestationAsync(string serial, string nonce, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, """
            SELECT id, serial, nonce, passed, reasons, firmware_version, boot_counter, latitude, longitude, source_address, client_sha256, token_sha256, at, expires_at, used_at
            FROM attestations WHERE serial = @serial AND nonce = @nonce AND passed = 1 AND used_at IS NULL AND expires_at > @now;
            """);
        Add(cmd, "@serial", serial);
        Add(cmd, "@nonce", nonce);
        Add(cmd, "@now", now.UtcTicks);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadAttestation(reader) : null;
    }

    public async Task<AttestationRecord?> FindUsableAttestationByClientAsync(string serial, string clientCertificateSha256, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, """
            SELECT id, serial, nonce, passed, reasons, firmware_version, boot_counter, latitude, longitude, source_address, client_sha256, token_sha256, at, expires_at, used_at
            FROM attestations WHERE serial = @serial AND client_sha256 = @client AND passed = 1 AND used_at IS NULL AND expires_at > @now
            ORDER BY at DESC, id DESC LIMIT 1;
            """);
        Add(cmd, "@serial", serial);
        Add(cmd, "@client", clientCertificateSha256);
        Add(cmd, "@now", now.UtcTicks);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadAttestation(reader) : null;
    }

    public async Task<IReadOnlyList<AttestationRecord>> GetAttestationsAsync(string serial, int limit, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, """
            SELECT id, serial, nonce, passed, reasons, firmware_version, boot_counter, latitude, longitude, source_address, client_sha256, token_sha256, at, expires_at, used_at
            FROM attestations WHERE serial = @serial ORDER BY at DESC, id DESC LIMIT @limit;
            """);
        Add(cmd, "@serial", serial);
        Add(cmd, "@limit", Math.Max(1, limit));
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var records = new List<AttestationRecord>();
        while (await reader.ReadAsync(cancellationToken))
        {
            records.Add(ReadAttestation(reader));
        }

        return records;
    }

    private static AttestationRecord ReadAttestation(System.Data.Common.DbDataReader reader)
    {
        return new AttestationRecord
        {
            Id = reader.GetString(0),
            Serial = reader.GetString(1),
            Nonce = reader.GetString(2),
            Passed = reader.GetInt64(3) == 1,
            Reasons = List(reader.GetString(4)),
            FirmwareVersion = reader.IsDBNull(5) ? null : reader.GetString(5),
            BootCounter = reader.IsDBNull(6) ? null : reader.GetInt64(6),
            Latitude = reader.IsDBNull(7) ? null : reader.GetDouble(7),
            Longitude = reader.IsDBNull(8) ? null : reader.GetDouble(8),
            SourceAddress = reader.IsDBNull(9) ? null : reader.GetString(9),
            ClientCertificateSha256 = reader.IsDBNull(10) ? null : reader.GetString(10),
            EnrollmentTokenSha256 = reader.IsDBNull(11) ? null : reader.GetString(11),
            At = Time(reader.GetInt64(12)),
            ExpiresAt = Time(reader.GetInt64(13)),
            UsedAt = reader.IsDBNull(14) ? null : Time(reader.GetInt64(14)),
        };
    }

    public async Task EnrollAsync(EnrollmentCommit enrollment, string actor, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(enrollment);
        var certificate = enrollment.Certificate;
        await using var connection = await OpenAsync(cancellationToken);
        await using var tx = await BeginWriteAsync(connection, cancellationToken);
        var version = await BumpVersionAsync(connection, tx, cancellationToken);
        var device = await FindAsync(connection, tx, certificate.DeviceSerial, cancellationToken)
            ?? throw new RegistryException(RegistryException.DeviceNotFound, $"No device with serial '{certificate.DeviceSerial}'.");
        if (device.State is not (DeviceLifecycleState.Provisioned or DeviceLifecycleState.Active))
        {
            throw new RegistryException(RegistryException.TransitionNotAllowed, $"Device '{device.Serial}' is {device.State}; it cannot enroll.");
        }

        await using (var consume = Command(connection, tx, "UPDATE attestations SET used_at = @now WHERE id = @id AND serial = @serial AND passed = 1 AND used_at IS NULL AND expires_at > @now;"))
        {
            Add(consume, "@now", now.UtcTicks);
            Add(consume, "@id", enrollment.AttestationId);
            Add(consume, "@serial", device.Serial);
            if (await consume.ExecuteNonQueryAsync(cancellationToken) != 1)
            {
                throw new RegistryException(RegistryException.AttestationUnusable, $"Attestation {enrollment.AttestationId} of '{device.Serial}' is used, expired or not passing.");
            }
        }

        await using (var retire = Command(connection, tx, "UPDATE device_certificates SET revoked_at = @now, revocation_reason = 'superseded', row_version = @version WHERE serial = @serial AND revoked_at IS NULL;"))
        {
            Add(retire, "@now", now.UtcTicks);
            Add(retire, "@version", version);
            Add(retire, "@serial", device.Serial);
            await retire.ExecuteNonQueryAsync(cancellationToken);
        }

        await InsertCertificateAsync(connection, tx, certificate, device.Serial, version, cancellationToken);

        if (device.State == DeviceLifecycleState.Provisioned)
        {
            await SetStateAsync(connection, tx, device.Serial, DeviceLifecycleState.Active, now.UtcTicks, version, cancellationToken);
            await InsertTransitionAsync(connection, tx, device.Serial, device.State, DeviceLifecycleState.Active, actor, "enrolled after a passing attestation", now.UtcTicks, cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
    }

    public async Task<string?> FindSerialByPublicKeyAsync(string publicKeySha256, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, "SELECT serial FROM device_certificates WHERE spki_sha256 = @spki LIMIT 1;");
        Add(cmd, "@spki", publicKeySha256);
        return await cmd.ExecuteScalarAsync(cancellationToken) as string;
    }

    public async Task<IReadOnlyList<RevokedCertificate>> GetRevokedCertificatesAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, "SELECT cert_serial, revoked_at, COALESCE(revocation_reason, 'revoked') FROM device_certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at;");
        var list = new List<RevokedCertificate>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            list.Add(new RevokedCertificate(reader.GetString(0), Time(reader.GetInt64(1)), reader.GetString(2)));
        }

        return list;
    }

    private static List<string> List(string joined)
        => [.. joined.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

}
