using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Redis;

namespace KtZeroTrust.Tests.Common;

/// <summary>Reads a whole decision stream back in pages (a realistic read, not one huge XRANGE).</summary>
public static class DecisionStreamReading
{
    /// <summary>Every decision id in <paramref name="stream"/>, in stream order, duplicates included.</summary>
    public static async Task<List<string>> DecisionIdsAsync(IRedisClient client, string stream, CancellationToken cancellationToken)
    {
        var ids = new List<string>();
        var last = "-";
        while (true)
        {
            var page = await client.StreamRangeAsync(stream, last == "-" ? "-" : "(" + last, "+", 5000, cancellationToken);
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
