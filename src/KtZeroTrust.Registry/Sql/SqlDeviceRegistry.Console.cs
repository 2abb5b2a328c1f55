using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;

namespace KtZeroTrust.Registry.Sql;

/// <summary>What the SOC console keeps beside the fleet: alert acknowledgements, and the inventory's batch reads.</summary>
public abstract partial class SqlDeviceRegistry : IAlertAcknowledgementStore, IFleetInventory
{
    // Ids per query: well under SQLite's and PostgreSQL's parameter limits.
    private const int IdsPerQuery = 500;

    public async Task AcknowledgeAsync(AlertAcknowledgement acknowledgement, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(acknowledgement);
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null,
            "INSERT INTO alert_acknowledgements (alert_id, acknowledged_by, acknowledged_at, note) VALUES (@id, @by, @at, @note) " +
            "ON CONFLICT (alert_id) DO UPDATE SET acknowledged_by = excluded.acknowledged_by, acknowledged_at = excluded.acknowledged_at, note = excluded.note;");
        Add(cmd, "@id", acknowledgement.AlertId);
        Add(cmd, "@by", acknowledgement.By);
        Add(cmd, "@at", acknowledgement.At.UtcTicks);
        Add(cmd, "@note", acknowledgement.Note);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<IReadOnlyDictionary<string, AlertAcknowledgement>> FindAcknowledgementsAsync(IReadOnlyCollection<string> alertIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(alertIds);
        var found = new Dictionary<string, AlertAcknowledgement>(StringComparer.Ordinal);
        if (alertIds.Count == 0)
        {
            return found;
        }

        await using var connection = await OpenAsync(cancellationToken);
        foreach (var chunk in alertIds.Distinct(StringComparer.Ordinal).Chunk(IdsPerQuery))
        {
            var names = chunk.Select((_, i) => "@a" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            await using var cmd = Command(connection, null,
                $"SELECT alert_id, acknowledged_by, acknowledged_at, note FROM alert_acknowledgements WHERE alert_id IN ({string.Join(", ", names)});");
            for (var i = 0; i < chunk.Length; i++)
            {
                Add(cmd, names[i], chunk[i]);
            }

            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var id = reader.GetString(0);
                found[id] = new AlertAcknowledgement(id, reader.GetString(1), Time(reader.GetInt64(2)), reader.IsDBNull(3) ? null : reader.GetString(3));
            }
        }

        return found;
    }

    public async Task AddCaseEntryAsync(AlertCaseEntry entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, "INSERT INTO alert_case_entries (alert_id, action, actor, at, text) VALUES (@id, @action, @by, @at, @text);");
        Add(cmd, "@id", entry.AlertId);
        Add(cmd, "@action", entry.Action);
        Add(cmd, "@by", entry.By);
        Add(cmd, "@at", entry.At.UtcTicks);
        Add(cmd, "@text", entry.Text);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<AlertCaseEntry>> GetCaseAsync(string alertId, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, "SELECT alert_id, action, actor, at, text FROM alert_case_entries WHERE alert_id = @id ORDER BY id;");
        Add(cmd, "@id", alertId);
        var entries = new List<AlertCaseEntry>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            entries.Add(new AlertCaseEntry(reader.GetString(0), reader.GetString(1), reader.GetString(2), Time(reader.GetInt64(3)), reader.IsDBNull(4) ? null : reader.GetString(4)));
        }

        return entries;
    }

    public async Task<IReadOnlyDictionary<string, string>> FindAssigneesAsync(IReadOnlyCollection<string> alertIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(alertIds);
        var found = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var connection = await OpenAsync(cancellationToken);
        foreach (var chunk in alertIds.Distinct(StringComparer.Ordinal).Chunk(IdsPerQuery))
        {
            var names = chunk.Select((_, i) => "@a" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            await using var cmd = Command(connection, null,
                $"SELECT alert_id, text FROM alert_case_entries WHERE action = 'assign' AND alert_id IN ({string.Join(", ", names)}) ORDER BY id;");
            for (var i = 0; i < chunk.Length; i++)
            {
                Add(cmd, names[i], chunk[i]);
            }

            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                found[reader.GetString(0)] = reader.IsDBNull(1) ? "" : reader.GetString(1); // the latest assignment wins
            }
        }

        return found;
    }

    public async Task<IReadOnlyList<Site>> ListSitesAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, "SELECT id, latitude, longitude, radius_m FROM sites ORDER BY id;");
        var sites = new List<Site>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            sites.Add(new Site { Id = reader.GetString(0), Latitude = reader.GetDouble(1), Longitude = reader.GetDouble(2), RadiusMeters = reader.GetDouble(3) });
        }

        return sites;
    }

    /// <summary>Each device's latest unrevoked certificate expiry, in one query (the inventory shows a page of devices at once).</summary>
    public async Task<IReadOnlyDictionary<string, DateTimeOffset>> GetCertificateExpiriesAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var cmd = Command(connection, null, "SELECT serial, MAX(not_after) FROM device_certificates WHERE revoked_at IS NULL GROUP BY serial;");
        var expiries = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            expiries[reader.GetString(0)] = Time(reader.GetInt64(1));
        }

        return expiries;
    }
}
