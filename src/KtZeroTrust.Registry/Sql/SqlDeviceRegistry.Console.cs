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
