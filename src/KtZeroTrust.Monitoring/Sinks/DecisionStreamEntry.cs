using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Pipeline;
using StackExchange.Redis;

namespace KtZeroTrust.Monitoring.Sinks;

/// <summary>
/// The decisions in one entry of the decision stream, in either form <see cref="RedisStreamSink"/> writes: one event
/// in the <c>event</c> field, or several in <c>events</c>, one JSON object per line (<c>ZeroTrust:DecisionStream:EventsPerEntry</c>).
/// </summary>
public static class DecisionStreamEntry
{
    public const string EventField = "event";
    public const string EventsField = "events";

    /// <summary>Each decision's JSON, in order. An entry with neither field yields nothing.</summary>
    public static IEnumerable<ReadOnlyMemory<byte>> EventJson(StreamEntry entry)
    {
        foreach (var field in entry.Values ?? [])
        {
            if (field.Name == EventField)
            {
                yield return (byte[])field.Value!;
            }
            else if (field.Name == EventsField)
            {
                ReadOnlyMemory<byte> rest = (byte[])field.Value!;
                while (!rest.IsEmpty)
                {
                    var end = rest.Span.IndexOf((byte)'\n');
                    var line = end < 0 ? rest : rest[..end];
                    rest = end < 0 ? ReadOnlyMemory<byte>.Empty : rest[(end + 1)..];
                    if (!line.IsEmpty)
                    {
                        yield return line;
                    }
                }
            }
        }
    }

    /// <summary>The entry's decisions; an unreadable one is skipped (and counted in <paramref name="unreadable"/>), never the rest.</summary>
    public static List<JournaledDecision> Read(StreamEntry entry, out int unreadable)
    {
        var events = new List<JournaledDecision>();
        unreadable = 0;
        foreach (var json in EventJson(entry))
        {
            if (DecisionLogReader.TryRead(json) is { } e)
            {
                events.Add(e);
            }
            else
            {
                unreadable++;
            }
        }

        return events;
    }
}
