using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;

namespace KtZeroTrust.Redis;

/// <summary>
/// The multiplexer: one pipelined connection shared by every caller. Callers encode their command and queue it; one
/// writer loop drains the queue into the socket and flushes when it runs dry (so concurrent commands share a write);
/// one reader loop matches replies to commands in order. A lost connection fails what is in flight and reconnects in
/// the background with backoff; meanwhile new commands fail fast, so no caller ever waits on a dead server.
/// </summary>
public sealed class RedisClient : IRedisClient
{
    private readonly RedisOptions _options;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly Timer _sweeper;
    private volatile Link? _link;
    private volatile Exception? _lastError;
    private int _reconnecting;
    private int _disposed;

    private RedisClient(RedisOptions options)
    {
        _options = options.Clone();
        var period = TimeSpan.FromTicks(Math.Clamp(options.CommandTimeout.Ticks / 4, TimeSpan.FromMilliseconds(10).Ticks, TimeSpan.FromMilliseconds(250).Ticks));
        _sweeper = new Timer(_ => Sweep(), null, period, period);
    }

    public event EventHandler<RedisConnectionEventArgs>? ConnectionFailed;

    public event EventHandler<RedisConnectionEventArgs>? ConnectionRestored;

    public string Endpoint => _options.Endpoint;

    public bool IsConnected => _link is { IsFailed: false };

    /// <summary>Connects; with <see cref="RedisOptions.AbortOnConnectFail"/> false a failed first attempt is retried in the background.</summary>
    public static async Task<RedisClient> ConnectAsync(RedisOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var client = new RedisClient(options);
        try
        {
            client.Attach(await RespConnection.OpenAsync(client._options, cancellationToken));
        }
        catch (RedisException ex) when (!options.AbortOnConnectFail)
        {
            client._lastError = ex;
            client.StartReconnect();
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }

        return client;
    }

    public Task<RedisReply> ExecuteAsync(string command, ReadOnlySpan<RedisArg> args, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(command);
        if (Refusal(cancellationToken, out var link) is { } refused)
        {
            return refused;
        }

        var buffer = RespWriter.Encode(command, args, out var length);
        return Send(link!, new PendingCommand(command, buffer, length, Deadline()), cancellationToken);
    }

    public Task<RedisReply> ExecuteTransactionAsync(IReadOnlyList<RedisCommand> commands, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(commands);
        ArgumentOutOfRangeException.ThrowIfZero(commands.Count);
        if (Refusal(cancellationToken, out var link) is { } refused)
        {
            return refused;
        }

        // MULTI's +OK and each command's +QUEUED come before EXEC's reply, which is the one the caller gets.
        var buffer = RespWriter.EncodeTransaction(commands, out var length);
        return Send(link!, new PendingCommand("EXEC", buffer, length, Deadline()) { RepliesBefore = commands.Count + 1 }, cancellationToken);
    }

    /// <summary>Why a command cannot be sent now (cancelled, or no connection: never waits for one); null with the link to send on.</summary>
    private Task<RedisReply>? Refusal(CancellationToken cancellationToken, out Link? link)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        link = _link;
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<RedisReply>(cancellationToken);
        }

        return link is null || link.IsFailed ? Task.FromException<RedisReply>(NotConnected()) : null;
    }

    private long Deadline() => Stopwatch.GetTimestamp() + (long)(_options.CommandTimeout.TotalSeconds * Stopwatch.Frequency);

    private Task<RedisReply> Send(Link link, PendingCommand pending, CancellationToken cancellationToken)
    {
        if (!link.Outgoing.Writer.TryWrite(pending))
        {
            pending.ReleaseBuffer();
            pending.TrySetException(NotConnected());
            return pending.Task;
        }

        pending.ObserveCancellation(cancellationToken);
        return pending.Task;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _shutdown.CancelAsync();
        await _sweeper.DisposeAsync();
        if (_link is { } link)
        {
            Fail(link, new RedisConnectionException(Endpoint, "the client was disposed", null));
            await link.Completion;
        }

        _shutdown.Dispose();
    }

    private RedisConnectionException NotConnected()
        => new(Endpoint, _lastError is null ? "not connected" : $"not connected (reconnecting; last error: {_lastError.Message})", _lastError);

    private void Attach(RespConnection connection)
    {
        var link = new Link(connection);
        _link = link;
        link.Completion = Task.WhenAll(Task.Run(() => WriteLoopAsync(link)), Task.Run(() => ReadLoopAsync(link)));
    }

    private async Task WriteLoopAsync(Link link)
    {
        var output = link.Connection.Output;
        var queue = link.Outgoing.Reader;
        try
        {
            while (await queue.WaitToReadAsync())
            {
                while (queue.TryRead(out var pending))
                {
                    if (pending.Task.IsCompleted || Stopwatch.GetTimestamp() > pending.Deadline)
                    {
                        // Cancelled or out of time before it was sent: never written, so no reply will come for it.
                        pending.TrySetException(Timeout(pending, link));
                        pending.ReleaseBuffer();
                        continue;
                    }

                    // Queued for its reply before its bytes can reach the server, so the reply always finds it.
                    link.AwaitingReply.Enqueue(pending);
                    if (link.IsFailed)
                    {
                        FailAll(link, _lastError); // lost while this one was in hand: Fail may have drained already
                        return;
                    }

                    output.Write(pending.Payload);
                    pending.ReleaseBuffer();
                    if (output.UnflushedBytes >= 256 * 1024)
                    {
                        await FlushAsync(link, output);
                    }
                }

                await FlushAsync(link, output);
            }
        }
        catch (Exception ex)
        {
            Fail(link, ex);
        }
    }

    private static async ValueTask FlushAsync(Link link, System.IO.Pipelines.PipeWriter output)
    {
        Volatile.Write(ref link.FlushStarted, Stopwatch.GetTimestamp());
        var result = await output.FlushAsync();
        Volatile.Write(ref link.FlushStarted, 0);
        if (result.IsCompleted || result.IsCanceled)
        {
            throw new IOException("the connection was closed while writing");
        }
    }

    private async Task ReadLoopAsync(Link link)
    {
        try
        {
            await link.Connection.ReadRepliesAsync(reply => OnReply(link, reply), () => CompleteBatch(link));
        }
        catch (Exception ex)
        {
            Fail(link, ex);
        }
    }

    private void OnReply(Link link, RedisReply reply)
    {
        if (reply.Kind == RedisReplyKind.Push)
        {
            return; // RESP3 out-of-band data (e.g. invalidations) answers no command.
        }

        if (!link.AwaitingReply.TryPeek(out var pending))
        {
            throw new RedisProtocolException($"Redis {Endpoint} sent a reply no command was waiting for ({reply.Describe()}).");
        }

        if (pending.RepliesBefore > 0)
        {
            // A transaction's MULTI and queued commands: only a refusal matters (EXEC then answers EXECABORT).
            pending.RepliesBefore--;
            pending.QueueError ??= reply.IsError ? reply.AsString() : null;
            return;
        }

        link.AwaitingReply.TryDequeue(out _);

        (link.Completed ??= []).Add((pending, reply));
    }

    /// <summary>
    /// Callers' continuations run on a worker, one hop per read's batch of replies rather than one per reply, and never
    /// on the read loop (a slow continuation must not stall everyone's replies).
    /// </summary>
    private static void CompleteBatch(Link link)
    {
        if (link.Completed is { } batch)
        {
            link.Completed = null;
            ThreadPool.UnsafeQueueUserWorkItem(static b => { foreach (var (p, r) in b) { p.Complete(r); } }, batch, preferLocal: false);
        }
    }

    private void Fail(Link link, Exception error)
    {
        if (!link.MarkFailed())
        {
            return;
        }

        Interlocked.CompareExchange(ref _link, null, link);
        var disposed = _disposed != 0;
        var failure = error switch
        {
            RedisProtocolException or RedisConnectionException => error,
            _ => new RedisConnectionException(Endpoint, $"connection lost: {error.Message}", error),
        };
        _lastError = failure;
        link.Outgoing.Writer.TryComplete();
        link.Connection.Abort();
        FailAll(link, failure);

        _ = link.Connection.DisposeAsync().AsTask().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
        if (!disposed)
        {
            Raise(ConnectionFailed, failure);
            StartReconnect();
        }
    }

    /// <summary>Fails every command written or queued on a lost link.</summary>
    private void FailAll(Link link, Exception? failure)
    {
        failure ??= new RedisConnectionException(Endpoint, "connection lost", null);
        Exception For(PendingCommand p) => failure is RedisProtocolException ? failure
            : new RedisConnectionException(Endpoint, $"connection lost before the reply to {p.Command}: {failure.Message}", failure);
        while (link.AwaitingReply.TryDequeue(out var pending))
        {
            pending.TrySetException(For(pending));
            pending.ReleaseBuffer();
        }

        while (link.Outgoing.Reader.TryRead(out var queued))
        {
            queued.TrySetException(For(queued));
            queued.ReleaseBuffer();
        }
    }

    private RedisTimeoutException Timeout(PendingCommand pending, Link link) => new(
        $"Redis {Endpoint}: no reply to {pending.Command} within {_options.CommandTimeout.TotalMilliseconds:0} ms ({link.AwaitingReply.Count} commands awaiting replies).");

    private void StartReconnect()
    {
        if (Interlocked.Exchange(ref _reconnecting, 1) != 0)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            var restored = await Reconnection.UntilConnectedAsync(
                _options, async ct => Attach(await RespConnection.OpenAsync(_options, ct)), ex => _lastError = ex, _shutdown.Token);
            Volatile.Write(ref _reconnecting, 0);
            if (restored)
            {
                _lastError = null;
                Raise(ConnectionRestored, null);
            }
        });
    }

    private void Raise(EventHandler<RedisConnectionEventArgs>? handler, Exception? error)
    {
        if (handler is not null)
        {
            var args = new RedisConnectionEventArgs(Endpoint, error);
            ThreadPool.QueueUserWorkItem(_ => handler(this, args));
        }
    }

    /// <summary>
    /// Times out written commands past their deadline (their late replies are then discarded in order; commands still
    /// queued are timed out by the writer). A connection whose oldest command waits twice the timeout with no byte
    /// received meanwhile, or whose write has been stuck for the timeout, is declared dead and replaced.
    /// </summary>
    private void Sweep()
    {
        var link = _link;
        if (link is null)
        {
            return;
        }

        var now = Stopwatch.GetTimestamp();
        foreach (var pending in link.AwaitingReply)
        {
            if (now < pending.Deadline)
            {
                break;
            }

            pending.TrySetException(Timeout(pending, link));
        }

        var timeoutTicks = (long)(_options.CommandTimeout.TotalSeconds * Stopwatch.Frequency);
        var flushStarted = Volatile.Read(ref link.FlushStarted);
        if (flushStarted != 0 && now - flushStarted > timeoutTicks)
        {
            Fail(link, new RedisConnectionException(Endpoint, $"writes blocked for over {_options.CommandTimeout.TotalMilliseconds:0} ms (the server is not reading)", null));
        }
        else if (link.AwaitingReply.TryPeek(out var oldest) && now - oldest.Deadline > timeoutTicks && now - link.Connection.LastReceived > timeoutTicks)
        {
            Fail(link, new RedisConnectionException(Endpoint, $"no data from the server for {_options.CommandTimeout.TotalMilliseconds * 2:0} ms with commands outstanding", null));
        }
    }

    private sealed class Link(RespConnection connection)
    {
        private int _failed;

        public RespConnection Connection { get; } = connection;

        public Channel<PendingCommand> Outgoing { get; } = Channel.CreateUnbounded<PendingCommand>(new UnboundedChannelOptions { SingleReader = true });

        /// <summary>Written, in order, awaiting their replies.</summary>
        public ConcurrentQueue<PendingCommand> AwaitingReply { get; } = new();

        /// <summary>Replies parsed in the current read, completed together at its end (read loop only).</summary>
        public List<(PendingCommand, RedisReply)>? Completed { get; set; }

        /// <summary>When the current flush began (Stopwatch ticks); 0 when not flushing.</summary>
        public long FlushStarted;

        public Task Completion { get; set; } = Task.CompletedTask;

        public bool IsFailed => Volatile.Read(ref _failed) != 0;

        public bool MarkFailed() => Interlocked.Exchange(ref _failed, 1) == 0;
    }

    private sealed class PendingCommand(string command, byte[] buffer, int length, long deadline)
        : TaskCompletionSource<RedisReply>
    {
        private byte[]? _buffer = buffer;
        private CancellationTokenRegistration _cancellation;

        public string Command { get; } = command;

        public long Deadline { get; } = deadline;

        public ReadOnlySpan<byte> Payload => _buffer.AsSpan(0, length);

        /// <summary>Replies that belong to this command before its own (a transaction's MULTI and queued commands). Read loop only.</summary>
        public int RepliesBefore { get; set; }

        /// <summary>Why a transaction's command was refused while queued, if one was.</summary>
        public string? QueueError { get; set; }

        public void ObserveCancellation(CancellationToken token)
        {
            if (token.CanBeCanceled)
            {
                _cancellation = token.UnsafeRegister(static (state, t) => ((PendingCommand)state!).TrySetCanceled(t), this);
            }
        }

        public void Complete(RedisReply reply)
        {
            _ = reply.IsError ? TrySetException(new RedisServerException(QueueError ?? reply.AsString() ?? "", Command)) : TrySetResult(reply);
            _cancellation.Unregister();
        }

        public void ReleaseBuffer()
        {
            if (Interlocked.Exchange(ref _buffer, null) is { } b)
            {
                ArrayPool<byte>.Shared.Return(b);
            }
        }
    }
}
