using System.Buffers;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.Monitoring.Sinks;

/// <summary>
/// Decisions into a Redis Stream (default <c>zt:decisions</c>), trimmed with an approximate MAXLEN (entries). By default
/// one entry per event with fields <c>id</c> (the decision id, for de-duplication: delivery is at least once) and
/// <c>event</c> (the JSON). With <paramref name="eventsPerEntry"/> above 1 (for high-rate gateway nodes: Redis pays per
/// entry far more than per byte) an entry holds up to that many consecutive decisions: <c>id</c> (the first one's),
/// <c>count</c> and <c>events</c> (one JSON object per line); <see cref="DecisionStreamEntry"/> reads both forms.
/// A chunk of entries is one MULTI/EXEC transaction, chunks one after another: a chunk is all-or-nothing and cannot be
/// split across a reconnect, so the stream keeps the order decisions were made in even when Redis restarts mid-batch.
/// (A transaction costs Redis about half of what the same XADDs cost from a Lua script: bench/README.md.)
/// </summary>
public sealed class RedisStreamSink : IDecisionExportSink
{
    /// <summary>The stream every node writes and every reader (console, detectors, ztctl) reads unless told otherwise.</summary>
    public const string DefaultStreamKey = "zt:decisions";

    private const int Chunk = 1000;
    private readonly RedisConnection _redis;
    private readonly string _streamKey;
    private readonly long _maxLength;
    private readonly int _eventsPerEntry;

    // One buffer for a chunk's JSON, reused (the lane calls one batch at a time); arguments are slices of it.
    private readonly ArrayBufferWriter<byte> _json = new(Chunk * 512);
    private readonly int[] _ends = new int[Chunk];

    public RedisStreamSink(RedisConnection redis, string streamKey = DefaultStreamKey, long maxLength = 10_000_000, int eventsPerEntry = 1)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentOutOfRangeException.ThrowIfLessThan(eventsPerEntry, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(eventsPerEntry, Chunk);
        _redis = redis;
        _streamKey = streamKey;
        _maxLength = maxLength;
        _eventsPerEntry = eventsPerEntry;
    }

    public string Name => "redis-stream";

    public string StreamKey => _streamKey;

    public async Task WriteBatchAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var db = await _redis.DatabaseAsync();
        for (var start = 0; start < batch.Count; start += Chunk)
        {
            var count = Math.Min(Chunk, batch.Count - start);
            ReadOnlyMemory<byte> written = default;
            if (_eventsPerEntry > 1)
            {
                // Several decisions per entry: their stored JSON joined by line breaks (copied, never serialized again).
                _json.Clear();
                for (var i = 0; i < count; i++)
                {
                    if (i % _eventsPerEntry != 0)
                    {
                        _json.Write("\n"u8);
                    }

                    _json.Write(batch[start + i].Json.Span);
                    _ends[i] = _json.WrittenCount;
                }

                written = _json.WrittenMemory;
            }

            var entries = (count + _eventsPerEntry - 1) / _eventsPerEntry;
            var transaction = db.CreateTransaction();
            var adds = new Task<RedisValue>[entries];
            for (var n = 0; n < entries; n++)
            {
                var first = n * _eventsPerEntry;
                var last = Math.Min(first + _eventsPerEntry, count) - 1;
                var id = batch[start + first].Event.Id;
                NameValueEntry[] fields = _eventsPerEntry == 1
                    ? [new("id", id), new(DecisionStreamEntry.EventField, batch[start + first].Json)]
                    : [new("id", id), new("count", last - first + 1), new(DecisionStreamEntry.EventsField, written[(first == 0 ? 0 : _ends[first - 1]).._ends[last]])];
                adds[n] = transaction.StreamAddAsync(_streamKey, fields, maxLength: _maxLength, useApproximateMaxLength: true);
            }

            // MULTI ... EXEC: a chunk is written whole or (connection lost before EXEC) not at all.
            await transaction.ExecuteAsync().WaitAsync(cancellationToken);
            // The transaction ran; a command that failed while running (the key holds another type: a
            // misconfiguration) throws here, and a retry re-adds the entries before it (readers de-duplicate by id).
            await Task.WhenAll(adds);
        }
    }
}
