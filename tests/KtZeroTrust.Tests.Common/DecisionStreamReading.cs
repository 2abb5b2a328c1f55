using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Redis;

namespace KtZeroTrust.Tests.Common;

/// <summary>Reads a whole decision stream back in pages (a realistic read, not one huge XRANGE).</summary>
public static class DecisionStreamReading
{
    /// <summary>
    /// Every decision id in <paramref name="stream"/>, in stream order, duplicates included. Give it a client with a
    /// realistic command timeout (seconds, not the 1 s a fault test gives the client under test).
    /// </summary>
    public static async Task<List<string>> DecisionIdsAsync(IRedisClient client, string stream, CancellationToken cancellationToken)
    {
        var ids = new List<string>();
        var last = "-";
        while (true)
        {
            var page = await client.StreamRangeAsync(stream, last == "-" ? "-" : "(" + last, "+", 1000, cancellationToken);
            if (page.Count == 0)
            {
                return ids;
            }

            foreach (var entry in page)
            {
                ids.AddRange(DecisionStreamEntry.Read(entry, out _).Select(e => e.Id));
            }

            last = page[^1].Id;
        }
    }
}
