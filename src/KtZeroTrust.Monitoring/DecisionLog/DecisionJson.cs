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
        writer.WriteString("kind"u8, DecisionNames.Name(e.Kind));
        writer.WriteString("listener"u8, DecisionNames.Name(e.Listener));
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
        // A forward-only reader, no document: the spool replays hundreds of thousands of these under load.
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("A decision is a JSON object.");
        }

        string? id = null, kind = null, listener = null, subject = null, source = null, method = null, path = null, route = null;
        string? outcome = null, reasonName = null, certificate = null, node = null, policy = null, detail = null;
        DateTimeOffset? time = null;
        int port = 0;
        double latency = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.ValueSpan;
            reader.Read();
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                reader.Skip(); // a field added by a later version: ignored
                continue;
            }

            string? Text(ref Utf8JsonReader r) => r.TokenType == JsonTokenType.String ? r.GetString() : null;
            if (name.SequenceEqual("id"u8))
            {
                id = Text(ref reader);
            }
            else if (name.SequenceEqual("time"u8))
            {
                time = reader.GetDateTimeOffset();
            }
            else if (name.SequenceEqual("kind"u8))
            {
                kind = Text(ref reader);
            }
            else if (name.SequenceEqual("listener"u8))
            {
                listener = Text(ref reader);
            }
            else if (name.SequenceEqual("subject"u8))
            {
                subject = Text(ref reader);
            }
            else if (name.SequenceEqual("sourceAddress"u8))
            {
                source = Text(ref reader);
            }
            else if (name.SequenceEqual("sourcePort"u8))
            {
                port = reader.GetInt32();
            }
            else if (name.SequenceEqual("method"u8))
            {
                method = Text(ref reader);
            }
            else if (name.SequenceEqual("path"u8))
            {
                path = Text(ref reader);
            }
            else if (name.SequenceEqual("route"u8))
            {
                route = Text(ref reader);
            }
            else if (name.SequenceEqual("outcome"u8))
            {
                outcome = Text(ref reader);
            }
            else if (name.SequenceEqual("reason"u8))
            {
                reasonName = Text(ref reader);
            }
            else if (name.SequenceEqual("certificateSha256"u8))
            {
                certificate = Text(ref reader);
            }
            else if (name.SequenceEqual("latencyUs"u8))
            {
                latency = reader.GetDouble();
            }
            else if (name.SequenceEqual("node"u8))
            {
                node = Text(ref reader);
            }
            else if (name.SequenceEqual("policyVersion"u8))
            {
                policy = Text(ref reader);
            }
            else if (name.SequenceEqual("detail"u8))
            {
                detail = Text(ref reader);
            }
        }

        if (reasonName is null)
        {
            throw new JsonException("A decision needs a reason.");
        }

        if (!ReasonCodes.TryParse(reasonName, out var reason))
        {
            throw new JsonException($"Unknown reason code '{reasonName}'.");
        }

        return new DecisionEvent
        {
            Id = id ?? throw new JsonException("A decision needs an id."),
            Time = time ?? throw new JsonException("A decision needs a time."),
            Kind = kind is null ? DecisionKind.Access : DecisionNames.TryParse(kind, out var k) ? k : throw new JsonException($"Unknown decision kind '{kind}'."),
            Listener = DecisionNames.ParseListener(listener),
            Subject = subject,
            SourceAddress = source,
            SourcePort = port,
            Method = method,
            Path = path,
            Route = route,
            Outcome = outcome == "allow" ? DecisionOutcome.Allow : DecisionOutcome.Deny,
            Reason = reason,
            CertificateHash = certificate,
            LatencyMicroseconds = latency,
            Node = node,
            PolicyVersion = policy,
            Detail = detail,
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
