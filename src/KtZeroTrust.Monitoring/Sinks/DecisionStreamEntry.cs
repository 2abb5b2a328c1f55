using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Redis;

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
    public static IEnumerable<ReadOnlyMemory<byte>> EventJson(RedisStreamEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        foreach (var (name, value) in entry.Fields)
        {
            if (name == EventField)
            {
                yield return value;
            }
            else if (name == EventsField)
            {
                ReadOnlyMemory<byte> rest = value;
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
    public static List<DecisionEvent> Read(RedisStreamEntry entry, out int unreadable)
    {
        var events = new List<DecisionEvent>();
        unreadable = 0;
        foreach (var json in EventJson(entry))
        {
            if (DecisionLogReader.TryParse(json.Span) is { } e)
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
