using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.Tests.Common;

/// <summary>Reads a whole decision stream back in pages (a realistic read, not one huge XRANGE).</summary>
public static class DecisionStreamReading
{
    /// <summary>
    /// Every decision id in <paramref name="stream"/>, in stream order, duplicates included. Give it a connection with a
    /// realistic command timeout (seconds, not the 1 s a fault test gives the client under test).
    /// </summary>
    public static async Task<List<string>> DecisionIdsAsync(RedisConnection connection, string stream, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var redis = await connection.DatabaseAsync();
        var ids = new List<string>();
        var last = "-";
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var page = await redis.StreamRangeAsync(stream, last == "-" ? "-" : "(" + last, "+", 1000);
            if (page.Length == 0)
            {
                return ids;
            }

            foreach (var entry in page)
            {
                ids.AddRange(DecisionStreamEntry.Read(entry, out _).Select(e => e.Event.Id));
            }

            last = page[^1].Id.ToString();
        }
    }
}
