using System.Buffers;
using System.Text.Json;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Redis;

namespace KtZeroTrust.Monitoring.Sinks;

/// <summary>
/// Decisions into a Redis Stream (default <c>zt:decisions</c>): one entry per event with fields <c>id</c> (the
/// decision id, for de-duplication: delivery is at least once) and <c>event</c> (the JSON), trimmed with an approximate
/// MAXLEN. Entries are added by a script, a chunk per command, chunks one after another: a chunk is all-or-nothing and
/// cannot be split across a reconnect, so the stream keeps the order decisions were made in even when Redis restarts
/// mid-batch. Exporters read it with a consumer group.
/// </summary>
public sealed class RedisStreamSink(IRedisClient redis, string streamKey = "zt:decisions", long maxLength = 10_000_000) : IDecisionExportSink
{
    private const int Chunk = 1000;

    // KEYS[1] stream; ARGV[1] max length, then (id, event) pairs.
    private static readonly RedisScript AddMany = new("""
        for i = 2, #ARGV, 2 do
          redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'id', ARGV[i], 'event', ARGV[i + 1])
        end
        return (#ARGV - 1) / 2
        """);

    public string Name => "redis-stream";

    public string StreamKey => streamKey;

    // One buffer for a chunk's JSON, reused (the lane calls one batch at a time); arguments are slices of it.
    private readonly ArrayBufferWriter<byte> _json = new(Chunk * 512);
    private readonly int[] _ends = new int[Chunk];

    public async Task WriteBatchAsync(IReadOnlyList<DecisionEvent> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        for (var start = 0; start < batch.Count; start += Chunk)
        {
            var count = Math.Min(Chunk, batch.Count - start);
            _json.Clear();
            using (var writer = new Utf8JsonWriter(_json))
            {
                for (var i = 0; i < count; i++)
                {
                    writer.Reset(_json);
                    DecisionJson.Write(writer, batch[start + i]);
                    writer.Flush();
                    _ends[i] = _json.WrittenCount;
                }
            }

            var written = _json.WrittenMemory;
            var args = new RedisArg[1 + (2 * count)];
            args[0] = maxLength;
            for (var i = 0; i < count; i++)
            {
                var from = i == 0 ? 0 : _ends[i - 1];
                args[1 + (2 * i)] = batch[start + i].Id;
                args[2 + (2 * i)] = written[from.._ends[i]];
            }

            await redis.EvaluateAsync(AddMany, [streamKey], args, cancellationToken);
        }
    }
}
