using System.Text.Json;
using KtZeroTrust.Core.Decisions;

namespace KtZeroTrust.Monitoring.DecisionLog;

/// <summary>Writes a decision as one JSON object. The field names are the log's schema; add, never rename.</summary>
public static class DecisionJson
{
    public static void Write(Utf8JsonWriter writer, DecisionEvent e)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(e);
        writer.WriteStartObject();
        writer.WriteString("id"u8, e.Id);
        writer.WriteString("time"u8, e.Time.UtcDateTime);
        writer.WriteString("kind"u8, e.Kind);
        writer.WriteString("listener"u8, e.Listener);
        WriteOptional(writer, "subject"u8, e.Subject);
        WriteOptional(writer, "sourceAddress"u8, e.SourceAddress);
        if (e.SourcePort != 0)
        {
            writer.WriteNumber("sourcePort"u8, e.SourcePort);
        }

        WriteOptional(writer, "method"u8, e.Method);
        WriteOptional(writer, "path"u8, e.Path);
        WriteOptional(writer, "route"u8, e.Route);
        writer.WriteString("outcome"u8, e.Outcome == DecisionOutcome.Allow ? "allow"u8 : "deny"u8);
        writer.WriteString("reason"u8, ReasonCodes.Name(e.Reason));
        WriteOptional(writer, "certificateSha256"u8, e.CertificateHash);
        writer.WriteNumber("latencyUs"u8, Math.Round(e.LatencyMicroseconds, 1));
        writer.WriteEndObject();
    }

    private static void WriteOptional(Utf8JsonWriter writer, ReadOnlySpan<byte> name, string? value)
    {
        if (value is not null)
        {
            writer.WriteString(name, value);
        }
    }
}
