using System.Buffers;
using System.Text.Json;
using KtZeroTrust.Core.Decisions;

namespace KtZeroTrust.Monitoring.DecisionLog;

/// <summary>
/// A decision as the pipeline carries it: the event, its place in this node's journal, and its JSON, written once by
/// the dispatcher. The journal, every spool, the log file and the Redis Stream store these same bytes.
/// </summary>
public sealed class JournaledDecision(DecisionEvent decision, long sequence, ReadOnlyMemory<byte> json)
{
    public DecisionEvent Event { get; } = decision;

    /// <summary>This node's journal position (0 for a decision that never went through a journal).</summary>
    public long Sequence { get; } = sequence;

    /// <summary>The decision as one UTF-8 JSON object (<see cref="DecisionJson"/>), no line break.</summary>
    public ReadOnlyMemory<byte> Json { get; } = json;

    /// <summary>
    /// Serializes a batch once, into one buffer: a write per batch and an allocation per batch, not per sink and
    /// decision. Sequences start at <paramref name="firstSequence"/>.
    /// </summary>
    public static JournaledDecision[] Serialize(IReadOnlyList<DecisionEvent> batch, long firstSequence)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var buffer = new ArrayBufferWriter<byte>(batch.Count * 384);
        var ends = new int[batch.Count];
        using (var writer = new Utf8JsonWriter(buffer))
        {
            for (var i = 0; i < batch.Count; i++)
            {
                writer.Reset(buffer);
                DecisionJson.Write(writer, batch[i]);
                writer.Flush();
                ends[i] = buffer.WrittenCount;
            }
        }

        var bytes = buffer.WrittenMemory;
        var result = new JournaledDecision[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            var start = i == 0 ? 0 : ends[i - 1];
            result[i] = new JournaledDecision(batch[i], firstSequence + i, bytes[start..ends[i]]);
        }

        return result;
    }

    /// <summary>One decision outside the dispatcher (tests, tools), with sequence 0 unless given.</summary>
    public static JournaledDecision Of(DecisionEvent decision, long sequence = 0) => Serialize([decision], sequence)[0];

    /// <summary>Reads stored JSON back, keeping the bytes (a spool or journal replay sends on exactly what was stored).</summary>
    public static JournaledDecision Read(ReadOnlyMemory<byte> json, long sequence) => new(DecisionJson.Read(json.Span), sequence, json);
}
