using System.Threading.Channels;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Core.Decisions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KtZeroTrust.Monitoring.Pipeline;

/// <summary>A destination of the decision stream (file, Redis Stream, OTLP). Throws when the batch was not accepted.</summary>
public interface IDecisionExportSink
{
    string Name { get; }

    Task WriteBatchAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken);
}

/// <summary>The pipeline's settings.</summary>
public sealed class DecisionPipelineOptions
{
    /// <summary>Events held in memory between posting and dispatch. Default 65,536.</summary>
    public int BufferCapacity { get; set; } = 65_536;

    /// <summary>
    /// Events queued in memory per sink before further ones go to its spool. Default 131,072 (a few seconds of a
    /// burst at full rate: a sink that keeps up on average rides out the burst without a detour through the disk).
    /// </summary>
    public int SinkQueueCapacity { get; set; } = 131_072;

    public int BatchSize { get; set; } = 512;

    /// <summary>
    /// How long the dispatcher lets events gather before handing a part-full batch to the sinks. Default 10 ms: at
    /// request rates it turns a write per decision into a write per 10 ms (a file append, one Redis command), which
    /// is what keeps the stream's cost off the request path on a busy node; it is also the most it adds to lag.
    /// </summary>
    public TimeSpan Linger { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Where each sink's spool lives.</summary>
    public required string SpoolDirectory { get; set; }

    /// <summary>Pause between attempts while a sink is failing. Default 1 s.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The node's name on the pipeline's own alerts and on any decision that does not name its node. Default: the machine name.</summary>
    public string Node { get; set; } = Environment.MachineName;

    /// <summary>A spool past this size raises a <c>decision_spool_growing</c> alert (again at every doubling). Default 1 MiB.</summary>
    public long SpoolAlertBytes { get; set; } = 1 << 20;

    /// <summary>Loss alerts are raised at most this often. Default 1 minute.</summary>
    public TimeSpan LossAlertInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>A sink failing without a break for this long raises a <c>decision_sink_failing</c> alert (once per episode). Default 30 s.</summary>
    public TimeSpan SinkFailingAlertAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the sinks' journal positions are saved (a crash replays at most this much twice). Default 100 ms.</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMilliseconds(100);
}

/// <summary>
/// Every decision to every sink, none lost, none slowing a request more than one journal write. <see cref="Post"/> only
/// writes to a bounded in-memory buffer (it never blocks; a full buffer is counted as loss and reported, never silent).
/// The dispatcher numbers each batch, appends it to the node's <see cref="DecisionJournal"/> (group commit), releases
/// the requests waiting for it (<see cref="WaitDurableAsync"/>), then hands it to one lane per sink; a lane writes to its
/// sink, and when the sink fails or falls behind, the lane's events go to its on-disk spool until the sink recovers and
/// the spool has been replayed, in order. Each lane's durable position is checkpointed; after a crash, what a lane held
/// only in memory is replayed to it from the journal. On shutdown everything still in memory is written or spooled.
/// </summary>
public sealed partial class DecisionPipeline : BackgroundService, IDecisionSink, IDecisionDurability
{
    private readonly Channel<DecisionEvent> _buffer;
    private readonly List<Lane> _lanes;
    private readonly DecisionPipelineOptions _options;
    private readonly ILogger<DecisionPipeline> _logger;
    private readonly TimeProvider _timeProvider;
    private readonly DecisionFactory _factory;
    private long _posted;
    private long _dropped;
    private long _lossReported;
    private DateTimeOffset _lastLossAlert = DateTimeOffset.MinValue;
    private readonly DecisionJournal _journal;
    private readonly object _postGate = new();
    private long _sequence;
    private long _settled;
    private long _journalFailures;
    private int _waiters;
    // Dispatcher-only state (ExecuteAsync, then StopAsync after it): no other thread reads these.
    private long _lastCheckpointTimestamp;
    private long _journalFailuresReported;
    private Dictionary<string, long>? _savedCheckpoints;

    /// <summary>The longest a request waits for its decisions to be journaled (the dispatcher takes milliseconds).</summary>
    private static readonly TimeSpan MaxDurableWait = TimeSpan.FromSeconds(5);
    private TaskCompletionSource _settledSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _lingerCut = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public DecisionPipeline(IEnumerable<IDecisionExportSink> sinks, DecisionPipelineOptions options, ILogger<DecisionPipeline> logger, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(sinks);
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = logger;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _factory = new DecisionFactory(options.Node, _timeProvider); // the node's name, as the node's own factory stamps it
        _buffer = Channel.CreateBounded<DecisionEvent>(new BoundedChannelOptions(options.BufferCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _lanes = [.. sinks.Select(s => new Lane(s, new DiskSpool(options.SpoolDirectory, s.Name), options, logger, _timeProvider))];
        _journal = new DecisionJournal(Path.Combine(options.SpoolDirectory, "journal"));
        _sequence = _journal.LastSequence;
    }

    /// <summary>Recovery first (file work that belongs to starting, not to constructing), then the dispatcher and lanes.</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        Recover();
        return base.StartAsync(cancellationToken);
    }

    /// <summary>
    /// After a crash: each sink gets, through its spool and in order, every journaled decision past its checkpoint
    /// (what it held only in memory when the process died). A sink with no checkpoint yet starts from now, unless no
    /// checkpoint was ever saved (then the previous run died young, and everything journaled is replayed).
    /// </summary>
    private void Recover()
    {
        var checkpoints = _journal.LoadCheckpoints();
        foreach (var lane in _lanes)
        {
            var from = checkpoints.TryGetValue(lane.Name, out var saved) ? saved : checkpoints.Count == 0 ? 0 : _journal.LastSequence;
            var replayed = 0L;
            var chunk = new List<JournaledDecision>(4096);
            foreach (var e in _journal.ReadAfter(from))
            {
                chunk.Add(e);
                if (chunk.Count == chunk.Capacity)
                {
                    replayed += lane.Restore(chunk);
                    chunk.Clear();
                }
            }

            replayed += lane.Restore(chunk);
            lane.StartAt(_journal.LastSequence);
            if (replayed > 0)
            {
                LogRecovered(_logger, replayed, lane.Name);
            }
        }

        SaveCheckpoints();
    }

    /// <summary>Decisions posted so far; a request waits with <see cref="WaitDurableAsync"/> for the count it saw.</summary>
    long IDecisionDurability.Posted => Interlocked.Read(ref _posted);

    /// <summary>Decisions the journal could not take (disk full): answered, recorded by the sinks, but not crash-safe.</summary>
    public long JournalFailures => Interlocked.Read(ref _journalFailures);

    public ValueTask WaitDurableAsync(long posted)
        => Volatile.Read(ref _settled) >= posted ? ValueTask.CompletedTask : new ValueTask(WaitSlowAsync(posted));

    private async Task WaitSlowAsync(long posted)
    {
        Interlocked.Increment(ref _waiters); // the dispatcher does not linger while a request waits
        Volatile.Read(ref _lingerCut).TrySetResult();
        try
        {
            // Bounded: a pipeline that stopped must not hold requests forever (the dispatcher journals within milliseconds).
            var start = _timeProvider.GetTimestamp();
            while (Volatile.Read(ref _settled) < posted && !_buffer.Reader.Completion.IsCompleted)
            {
                var signal = Volatile.Read(ref _settledSignal).Task; // read before the check: a completion in between still wakes us
                var left = MaxDurableWait - _timeProvider.GetElapsedTime(start);
                if (Volatile.Read(ref _settled) >= posted || left <= TimeSpan.Zero)
                {
                    return;
                }

                await signal.WaitAsync(left, _timeProvider).ConfigureAwait(false);
            }
        }
        catch (TimeoutException)
        {
        }
        finally
        {
            Interlocked.Decrement(ref _waiters);
        }
    }

    public long Posted => Interlocked.Read(ref _posted);

    /// <summary>Events refused because the in-memory buffer was full (reported as loss).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public IReadOnlyList<SinkStatus> Sinks => [.. _lanes.Select(l => l.Status)];

    /// <summary>Decisions by outcome and reason, and access latency, as dispatched.</summary>
    public DecisionCounters Counters { get; } = new();

    public string Node => _options.Node;

    /// <summary>How far the slowest sink is behind: seconds since the oldest event it has not yet written (0 when caught up).</summary>
    public double LagSeconds => _lanes.Count == 0 ? 0 : _lanes.Max(l => l.LagSeconds(_timeProvider.GetUtcNow()));

    public void Post(DecisionEvent decision)
    {
        ArgumentNullException.ThrowIfNull(decision);
        if (decision.Node is null)
        {
            decision = decision with { Node = _options.Node }; // made outside a node's factory (tools, tests): this node's
        }

        bool written;
        lock (_postGate)
        {
            // Under the lock, the count is the decision's place in the buffer's order: a waiter's count is exact.
            written = _buffer.Writer.TryWrite(decision);
            if (written)
            {
                Interlocked.Increment(ref _posted);
            }
        }

        if (written)
        {
            return;
        }

        if (Interlocked.Increment(ref _dropped) == 1 || Dropped % 10_000 == 0)
        {
            LogDropped(_logger, Dropped);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var writers = _lanes.Select(l => Task.Run(() => l.RunAsync(stoppingToken), CancellationToken.None)).ToList();
        var batch = new List<DecisionEvent>(_options.BatchSize);
        try
        {
            while (await _buffer.Reader.WaitToReadAsync(stoppingToken))
            {
                if (_buffer.Reader.Count < _options.BatchSize && _options.Linger > TimeSpan.Zero && Volatile.Read(ref _waiters) == 0)
                {
                    // Cut short as soon as a request waits for its decisions: the linger saves sink writes, never a request's time.
                    var cut = Volatile.Read(ref _lingerCut);
                    if (Volatile.Read(ref _waiters) == 0)
                    {
                        await Task.WhenAny(Task.Delay(_options.Linger, _timeProvider, stoppingToken), cut.Task);
                        stoppingToken.ThrowIfCancellationRequested();
                    }

                    if (cut.Task.IsCompleted)
                    {
                        Interlocked.CompareExchange(ref _lingerCut, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), cut);
                    }
                }

                Dispatch(batch);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await Task.WhenAll(writers);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _buffer.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
        // Whatever is still in memory: one last dispatch, then each lane writes what it can and spools the rest.
        Dispatch(new List<DecisionEvent>(_options.BatchSize));
        foreach (var lane in _lanes)
        {
            await lane.FlushAsync(cancellationToken);
        }

        SaveCheckpoints();
        _journal.Dispose();
    }

    private void SaveCheckpoints()
    {
        var checkpoints = _lanes.ToDictionary(l => l.Name, l => l.DurableSequence, StringComparer.Ordinal);
        if (_savedCheckpoints is { } saved && saved.Count == checkpoints.Count && checkpoints.All(c => saved.GetValueOrDefault(c.Key, -1) == c.Value))
        {
            return; // nothing moved: no file written
        }

        try
        {
            _journal.SaveCheckpoints(checkpoints);
            _savedCheckpoints = checkpoints;
        }
        catch (IOException ex)
        {
            LogCheckpointFailed(_logger, ex); // the next save catches up; a crash meanwhile replays more, never less
        }
    }

    private void Dispatch(List<DecisionEvent> batch)
    {
        while (true)
        {
            batch.Clear();
            while (batch.Count < _options.BatchSize && _buffer.Reader.TryRead(out var e))
            {
                batch.Add(e);
            }

            if (batch.Count == 0)
            {
                return;
            }

            var journaled = Journal(batch);
            foreach (var e in batch)
            {
                Counters.Count(e);
            }

            foreach (var lane in _lanes)
            {
                lane.Accept(journaled);
            }

            RaiseHealthAlerts();
            var now = _timeProvider.GetTimestamp();
            if (_timeProvider.GetElapsedTime(_lastCheckpointTimestamp, now) >= _options.CheckpointInterval)
            {
                _lastCheckpointTimestamp = now;
                SaveCheckpoints();
            }
        }
    }

    /// <summary>Numbers and serializes the batch (once, for every sink), appends it to the journal, and releases the requests waiting for it.</summary>
    private JournaledDecision[] Journal(List<DecisionEvent> batch)
    {
        var journaled = JournaledDecision.Serialize(batch, _sequence + 1);
        _sequence += batch.Count;
        try
        {
            _journal.Append(journaled);
        }
        catch (IOException ex)
        {
            // The sinks still get the batch; only its crash safety is gone. Counted, logged and alerted (health alerts).
            Interlocked.Add(ref _journalFailures, batch.Count);
            LogJournalFailed(_logger, ex, batch.Count);
        }

        Interlocked.Add(ref _settled, batch.Count);
        Interlocked.Exchange(ref _settledSignal, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        return journaled;
    }

    /// <summary>
    /// Loss and spool growth become alerts in the stream itself (and so on the console and in the SIEM), not only
    /// metrics: loss at most once per interval, spool growth once per doubling past the threshold.
    /// </summary>
    private void RaiseHealthAlerts()
    {
        var lost = Dropped + _lanes.Sum(l => l.Status.Lost);
        var now = _timeProvider.GetUtcNow();
        foreach (var lane in _lanes)
        {
            if (lane.FailingAlertDue(now, _options.SinkFailingAlertAfter) is { } since)
            {
                PostAlert(ReasonCode.DecisionSinkFailing, lane.Name, $"sink {lane.Name} has been failing since {since:u}: {lane.Status.LastError}");
            }
        }

        if (JournalFailures > _journalFailuresReported)
        {
            _journalFailuresReported = JournalFailures;
            PostAlert(ReasonCode.DecisionSinkFailing, "journal", $"the decision journal cannot be written ({JournalFailures} decisions not crash-safe so far); the disk of {_journal.Directory} is full or failing");
        }

        if (lost > _lossReported && now - _lastLossAlert >= _options.LossAlertInterval)
        {
            var detail = $"{lost - _lossReported} decisions lost ({Dropped} with the buffer full, {lost - Dropped} with a spool unwritable) since the last alert";
            _lossReported = lost;
            _lastLossAlert = now;
            PostAlert(ReasonCode.DecisionsLost, "pipeline", detail);
        }

        foreach (var lane in _lanes)
        {
            if (lane.SpoolAlertDue(_options.SpoolAlertBytes) is { } bytes)
            {
                PostAlert(ReasonCode.DecisionSpoolGrowing, lane.Name, $"sink {lane.Name} is behind; its spool holds {bytes:N0} bytes");
            }
        }
    }

    private void PostAlert(ReasonCode reason, string what, string detail)
        => Post(_factory.Alert(DecisionListener.Pipeline, reason, _options.Node, DecisionOrigin.At("pipeline:" + what), detail));

    [LoggerMessage(EventId = MonitoringEventIds.JournalFailed, Level = LogLevel.Critical, Message = "Decision journal cannot be written: {Count} decisions are not crash-safe (the sinks still receive them)")]
    private static partial void LogJournalFailed(ILogger logger, Exception exception, int count);

    [LoggerMessage(EventId = MonitoringEventIds.JournalRecovered, Level = LogLevel.Warning, Message = "Replayed {Count} decisions from the journal to sink {Sink}: it held them only in memory when the process stopped")]
    private static partial void LogRecovered(ILogger logger, long count, string sink);

    [LoggerMessage(EventId = MonitoringEventIds.CheckpointFailed, Level = LogLevel.Warning, Message = "Decision journal checkpoints could not be saved")]
    private static partial void LogCheckpointFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = MonitoringEventIds.PipelineDropped, Level = LogLevel.Critical, Message = "Decision pipeline buffer full: {Dropped} decisions lost so far")]
    private static partial void LogDropped(ILogger logger, long dropped);

    [LoggerMessage(EventId = MonitoringEventIds.SinkFailed, Level = LogLevel.Warning, Message = "Decision sink {Sink} failed; its decisions go to the spool until it recovers")]
    private static partial void LogSinkFailed(ILogger logger, Exception exception, string sink);

    [LoggerMessage(EventId = MonitoringEventIds.SinkRecovered, Level = LogLevel.Information, Message = "Decision sink {Sink} recovered; spool replayed")]
    private static partial void LogSinkRecovered(ILogger logger, string sink);

    [LoggerMessage(EventId = MonitoringEventIds.SpoolFailed, Level = LogLevel.Critical, Message = "Decision spool of {Sink} cannot be written ({Count} decisions lost)")]
    private static partial void LogSpoolFailed(ILogger logger, Exception exception, string sink, int count);

    /// <summary>What a sink's lane has done so far. <see cref="FailingSince"/>: the sink's first failure without a success since (null: healthy).</summary>
    public sealed record SinkStatus(string Name, long Written, long Spooled, long SpoolBytes, long Lost, bool Spooling, string? LastError, DateTimeOffset? FailingSince = null)
    {
        /// <summary>Failing, or catching up from its spool: either way not current.</summary>
        public bool Behind => Spooling || FailingSince is not null;
    }

    /// <summary>One sink: an in-memory queue while it keeps up, its spool while it does not.</summary>
    private sealed class Lane(IDecisionExportSink sink, DiskSpool spool, DecisionPipelineOptions options, ILogger logger, TimeProvider timeProvider)
    {
        // First journal sequence of each batch held only in memory (queued or being retried), oldest first: what a
        // crash would lose from this lane. Guarded by _mode.
        private readonly Queue<long> _inMemory = new();
        private long _lastAccepted;
        private int _retryParts;
        private long _failingSinceTicks;
        private bool _failingAlerted;
        private readonly Channel<JournaledDecision[]> _queue = Channel.CreateUnbounded<JournaledDecision[]>(new UnboundedChannelOptions { SingleReader = true });
        private readonly object _mode = new();
        private int _queued;
        private bool _spooling = !spool.IsEmpty; // a spool left by the previous run is replayed first (read with Volatile)
        private long _written;
        private long _spooled;
        private long _lost;
        private long _accepted;
        private long _lastWrittenTicks;
        private long _firstPendingTicks;
        private long _spoolAlertedBytes;

        private const int MaxWrite = 8192;
        private volatile string? _lastError;
        private JournaledDecision[]? _retry;

        public SinkStatus Status => new(sink.Name, Interlocked.Read(ref _written), Interlocked.Read(ref _spooled), spool.PendingBytes, Interlocked.Read(ref _lost), _spooling, _lastError,
            Interlocked.Read(ref _failingSinceTicks) is > 0 and var t ? new DateTimeOffset(t, TimeSpan.Zero) : null);

        /// <summary>The journal sequence up to which every decision is in the sink or in the spool (not only in memory).</summary>
        public long DurableSequence
        {
            get
            {
                lock (_mode)
                {
                    return _inMemory.TryPeek(out var first) ? first - 1 : _lastAccepted;
                }
            }
        }

        /// <summary>Recovery: decisions this lane held only in memory when the process died, back into its spool.</summary>
        public long Restore(List<JournaledDecision> events)
        {
            if (events.Count == 0)
            {
                return 0;
            }

            lock (_mode)
            {
                _spooling = true;
                SpoolLocked(events);
            }

            return events.Count;
        }

        public void StartAt(long sequence)
        {
            lock (_mode)
            {
                _lastAccepted = sequence;
            }
        }

        /// <summary>The failure's start when the sink has been failing longer than <paramref name="after"/> and that was not yet alerted.</summary>
        public DateTimeOffset? FailingAlertDue(DateTimeOffset now, TimeSpan after)
        {
            var since = Interlocked.Read(ref _failingSinceTicks);
            if (since == 0 || _failingAlerted || now.UtcTicks - since < after.Ticks)
            {
                return null;
            }

            _failingAlerted = true;
            return new DateTimeOffset(since, TimeSpan.Zero);
        }

        public string Name => sink.Name;

        /// <summary>Seconds since the oldest event not yet written: approximated by the last written event's time (or the first accepted one's).</summary>
        public double LagSeconds(DateTimeOffset now)
        {
            if (Interlocked.Read(ref _accepted) - Interlocked.Read(ref _written) - Interlocked.Read(ref _lost) <= 0)
            {
                return 0;
            }

            var since = Math.Max(Interlocked.Read(ref _lastWrittenTicks), Interlocked.Read(ref _firstPendingTicks));
            return since == 0 ? 0 : Math.Max(0, (now.UtcTicks - since) / (double)TimeSpan.TicksPerSecond);
        }

        /// <summary>The spool's size when it has passed the threshold or doubled since the last alert; null otherwise.</summary>
        public long? SpoolAlertDue(long threshold)
        {
            var bytes = spool.PendingBytes;
            if (bytes < threshold)
            {
                _spoolAlertedBytes = 0; // drained: the next growth alerts again
                return null;
            }

            if (bytes < Math.Max(threshold, _spoolAlertedBytes * 2))
            {
                return null;
            }

            _spoolAlertedBytes = bytes;
            return bytes;
        }

        /// <summary>From the dispatcher: queue the batch, or spool it while the sink is behind (order is kept by the lock).</summary>
        public void Accept(JournaledDecision[] batch)
        {
            if (Interlocked.Add(ref _accepted, batch.Length) - batch.Length == Interlocked.Read(ref _written) + Interlocked.Read(ref _lost))
            {
                Interlocked.Exchange(ref _firstPendingTicks, batch[0].Event.Time.UtcTicks); // was caught up: lag counts from here
            }

            lock (_mode)
            {
                _lastAccepted = batch[^1].Sequence;
                if (!_spooling && Volatile.Read(ref _queued) + batch.Length <= options.SinkQueueCapacity)
                {
                    Interlocked.Add(ref _queued, batch.Length);
                    _inMemory.Enqueue(batch[0].Sequence);
                    _queue.Writer.TryWrite(batch);
                    return;
                }

                if (!_spooling)
                {
                    _spooling = true;
                    _queue.Writer.TryWrite([]); // wake the writer: after the queue it must turn to the spool
                }

                SpoolLocked(batch);
            }
        }

        public async Task RunAsync(CancellationToken stoppingToken)
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    // Order: what is queued in memory is older than anything spooled, so the queue always goes first.
                    // Queued batches are coalesced into one write (fewer round trips when the sink is behind); a write
                    // that fails is kept and retried as it was before anything newer.
                    if (_retry is null && _queue.Reader.TryPeek(out _))
                    {
                        var coalesced = new List<JournaledDecision>();
                        var parts = 0;
                        while (coalesced.Count < MaxWrite && _queue.Reader.TryRead(out var queued))
                        {
                            coalesced.AddRange(queued);
                            parts += queued.Length > 0 ? 1 : 0; // the empty wake-up marker carries no decisions
                            Interlocked.Add(ref _queued, -queued.Length);
                        }

                        _retry = [.. coalesced];
                        _retryParts = parts;
                    }

                    if (_retry is { } pendingWrite)
                    {
                        if (pendingWrite.Length > 0)
                        {
                            await WriteAsync(pendingWrite, stoppingToken);
                        }

                        lock (_mode)
                        {
                            for (var i = 0; i < _retryParts && _inMemory.Count > 0; i++)
                            {
                                _inMemory.Dequeue(); // in the sink now
                            }
                        }

                        _retry = null;
                        _retryParts = 0;
                        continue;
                    }

                    if (Volatile.Read(ref _spooling))
                    {
                        await ReplayAsync(stoppingToken);
                        continue;
                    }

                    if (!await _queue.Reader.WaitToReadAsync(stoppingToken))
                    {
                        return;
                    }
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex)
                {
                    // The failed batch stays at the head of the queue and is retried; once the queue is full, the
                    // dispatcher sends newer events to the spool, which is replayed after the queue drains: in order.
                    _lastError = $"{ex.GetType().Name}: {ex.Message}";
                    Interlocked.CompareExchange(ref _failingSinceTicks, timeProvider.GetUtcNow().UtcTicks, 0);
                    LogSinkFailed(logger, ex, sink.Name);
                    await DelayAsync(stoppingToken);
                }
            }
        }

        /// <summary>
        /// Shutdown: try the sink once for what is queued; spool what it does not take (after anything already spooled:
        /// the one place order can give way, and only across a restart; event ids and times still sort it).
        /// </summary>
        public async Task FlushAsync(CancellationToken cancellationToken)
        {
            var leftovers = _retry is { } retry ? new[] { retry } : [];
            _retry = null;
            _retryParts = 0;
            foreach (var batch in leftovers.Concat(Drain()))
            {
                try
                {
                    if (_spooling)
                    {
                        throw new InvalidOperationException("spooling");
                    }

                    await WriteAsync(batch, cancellationToken);
                }
                catch (Exception)
                {
                    lock (_mode)
                    {
                        _spooling = true;
                        SpoolLocked(batch);
                    }
                }
            }

            lock (_mode)
            {
                _inMemory.Clear(); // everything is in the sink or the spool now
            }
        }

        private IEnumerable<JournaledDecision[]> Drain()
        {
            while (_queue.Reader.TryRead(out var batch))
            {
                yield return batch;
            }
        }

        private async Task ReplayAsync(CancellationToken stoppingToken)
        {
            var (events, next) = spool.Peek(MaxWrite);
            if (events.Count == 0)
            {
                lock (_mode)
                {
                    // Caught up: back to the in-memory queue, unless something was spooled meanwhile.
                    if (spool.IsEmpty)
                    {
                        _spooling = false;
                        LogSinkRecovered(logger, sink.Name);
                    }
                }

                return;
            }

            await WriteAsync([.. events], stoppingToken);
            spool.Commit(next);
        }

        private async Task WriteAsync(JournaledDecision[] batch, CancellationToken cancellationToken)
        {
            await sink.WriteBatchAsync(batch, cancellationToken);
            Interlocked.Exchange(ref _lastWrittenTicks, batch[^1].Event.Time.UtcTicks);
            Interlocked.Add(ref _written, batch.Length);
            if (Interlocked.Exchange(ref _failingSinceTicks, 0) != 0)
            {
                _failingAlerted = false; // LastError stays: what went wrong last; FailingSince says whether it still does
            }
        }

        private void SpoolLocked(IReadOnlyList<JournaledDecision> batch)
        {
            try
            {
                spool.Append(batch);
                Interlocked.Add(ref _spooled, batch.Count);
            }
            catch (IOException ex)
            {
                Interlocked.Add(ref _lost, batch.Count);
                LogSpoolFailed(logger, ex, sink.Name, batch.Count);
            }
        }

        private async Task DelayAsync(CancellationToken stoppingToken)
        {
            try
            {
                await Task.Delay(options.RetryDelay, stoppingToken);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }
}
