using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Pipeline;

namespace KtZeroTrust.SocConsole.Decisions;

/// <summary>
/// A decision's stored JSON, written into an answer as it is: the console shows every field the pipeline wrote
/// (certificate hash, source port, policy version included) and neither parses nor serializes a decision again.
/// </summary>
[JsonConverter(typeof(Converter))]
public readonly record struct RawDecisionJson(ReadOnlyMemory<byte> Utf8)
{
    public static RawDecisionJson Of(JournaledDecision decision) => new(decision.Json);

    /// <summary>The stored object with the alert's acknowledgement appended (the object always ends with its brace).</summary>
    public static RawDecisionJson WithAcknowledgement(JournaledDecision decision, string? by, DateTimeOffset? at)
        => With(decision, ("acknowledgedBy", by), ("acknowledgedAt", at));

    /// <summary>The stored object with these fields appended (the console's view of an alert: acknowledgement, severity, assignee).</summary>
    public static RawDecisionJson With(JournaledDecision decision, params (string Name, object? Value)[] fields)
    {
        ArgumentNullException.ThrowIfNull(decision);
        var json = decision.Json.Span;
        var extra = string.Concat(fields.Select(f => $",{JsonSerializer.Serialize(f.Name)}:{JsonSerializer.Serialize(f.Value)}")) + "}";
        var bytes = new byte[json.Length - 1 + Encoding.UTF8.GetByteCount(extra)];
        json[..^1].CopyTo(bytes);
        Encoding.UTF8.GetBytes(extra, bytes.AsSpan(json.Length - 1));
        return new RawDecisionJson(bytes);
    }

    private sealed class Converter : JsonConverter<RawDecisionJson>
    {
        public override RawDecisionJson Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
            => throw new NotSupportedException("Decisions are read by DecisionJson.");

        public override void Write(Utf8JsonWriter writer, RawDecisionJson value, JsonSerializerOptions options)
            => writer.WriteRawValue(value.Utf8.Span, skipInputValidation: true); // written by DecisionJson: valid by construction
    }
}
