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
        WriteOptional(writer, "node"u8, e.Node);
        WriteOptional(writer, "policyVersion"u8, e.PolicyVersion);
        WriteOptional(writer, "detail"u8, e.Detail);
        writer.WriteEndObject();
    }

    /// <summary>Reads an event back (the spool and the stream hold this form). Throws <see cref="JsonException"/> on anything else.</summary>
    public static DecisionEvent Read(ReadOnlySpan<byte> json)
    {
        using var document = JsonDocument.Parse(json.ToArray());
        var e = document.RootElement;
        string? Text(string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        var reasonName = Text("reason") ?? throw new JsonException("A decision needs a reason.");
        if (!ReasonCodes.TryParse(reasonName, out var reason))
        {
            throw new JsonException($"Unknown reason code '{reasonName}'.");
        }

        return new DecisionEvent
        {
            Id = Text("id") ?? throw new JsonException("A decision needs an id."),
            Time = e.GetProperty("time").GetDateTimeOffset(),
            Kind = Text("kind") ?? DecisionEvent.AccessKind,
            Listener = Text("listener") ?? "unknown",
            Subject = Text("subject"),
            SourceAddress = Text("sourceAddress"),
            SourcePort = e.TryGetProperty("sourcePort", out var port) ? port.GetInt32() : 0,
            Method = Text("method"),
            Path = Text("path"),
            Route = Text("route"),
            Outcome = Text("outcome") == "allow" ? DecisionOutcome.Allow : DecisionOutcome.Deny,
            Reason = reason,
            CertificateHash = Text("certificateSha256"),
            LatencyMicroseconds = e.TryGetProperty("latencyUs", out var latency) ? latency.GetDouble() : 0,
            Node = Text("node"),
            PolicyVersion = Text("policyVersion"),
            Detail = Text("detail"),
        };
    }

    /// <summary>One event as a UTF-8 JSON object.</summary>
    public static byte[] ToUtf8(DecisionEvent e)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Write(writer, e);
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteOptional(Utf8JsonWriter writer, ReadOnlySpan<byte> name, string? value)
    {
        if (value is not null)
        {
            writer.WriteString(name, value);
        }
    }
}
