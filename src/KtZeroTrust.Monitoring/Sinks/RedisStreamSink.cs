using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Redis;

namespace KtZeroTrust.Monitoring.Sinks;

/// <summary>
/// Decisions into a Redis Stream (default <c>zt:decisions</c>): one entry per event with fields <c>id</c> (the
/// decision id, for de-duplication: delivery is at least once) and <c>event</c> (the JSON). A batch is pipelined on the
/// shared connection; the stream is trimmed with an approximate MAXLEN. Exporters read it with a consumer group.
/// </summary>
public sealed class RedisStreamSink(IRedisClient redis, string streamKey = "zt:decisions", long maxLength = 10_000_000) : IDecisionExportSink
{
    public string Name => "redis-stream";

    public string StreamKey => streamKey;

    public async Task WriteBatchAsync(IReadOnlyList<DecisionEvent> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var writes = new Task<string>[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            var e = batch[i];
            writes[i] = redis.StreamAddAsync(streamKey, [new("id", e.Id), new("event", DecisionJson.ToUtf8(e))], maxLength, cancellationToken: cancellationToken);
        }

        await Task.WhenAll(writes);
    }
}
