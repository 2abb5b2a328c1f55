using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;

namespace KtZeroTrust.Redis;

/// <summary>A message received on a subscribed channel.</summary>
public readonly record struct RedisChannelMessage(string Channel, byte[] Payload);

/// <summary>
/// Pub/sub on its own connection (a subscribed connection can carry nothing else). Subscriptions are remembered and
/// re-sent after every reconnect; <see cref="ConnectionRestored"/> is raised only once they are confirmed again, so a
/// listener knows from that moment on it misses nothing, and that it may have missed messages before it.
/// A PING every heartbeat interval detects a silent dead peer.
/// </summary>
public sealed class RedisSubscriber : IAsyncDisposable
{
    private readonly RedisOptions _options;
    private readonly ConcurrentDictionary<string, Action<RedisChannelMessage>> _handlers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _confirmations = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly CancellationTokenSource _shutdown = new();
    private readonly Timer _heartbeat;
    private volatile SubscriberLink? _link;
    private volatile Exception? _lastError;
    private int _reconnecting;
    private int _disposed;

    private RedisSubscriber(RedisOptions options)
    {
        _options = options.Clone();
        _heartbeat = new Timer(_ => Heartbeat(), null, options.HeartbeatInterval, options.HeartbeatInterval);
    }

    public event EventHandler<RedisConnectionEventArgs>? ConnectionFailed;

    /// <summary>Raised after a reconnect, once every subscription is confirmed again.</summary>
    public event EventHandler<RedisConnectionEventArgs>? ConnectionRestored;

    /// <summary>Raised when a message handler throws; the subscriber keeps going.</summary>
    public event EventHandler<RedisConnectionEventArgs>? HandlerFailed;

    public string Endpoint => _options.Endpoint;

    /// <summary>Connected, and every subscription confirmed.</summary>
    public bool IsConnected => _link is { IsFailed: false, Ready: true };

    public static async Task<RedisSubscriber> ConnectAsync(RedisOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var subscriber = new RedisSubscriber(options);
        try
        {
            await subscriber.OpenAsync(cancellationToken);
        }
        catch (RedisException ex) when (!options.AbortOnConnectFail)
        {
            subscriber._lastError = ex;
            subscriber.StartReconnect();
        }
        catch
        {
            await subscriber.DisposeAsync();
            throw;
        }

        return subscriber;
    }

    /// <summary>
    /// Subscribes <paramref name="handler"/> (called on the subscriber's read loop: keep it short) to a channel and
    /// waits for the server's confirmation. The subscription is kept across reconnects; when the server is unreachable
    /// now the call throws, and the subscription still takes effect when the connection returns.
    /// </summary>
    public async Task SubscribeAsync(string channel, Action<RedisChannelMessage> handler, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(channel);
        ArgumentNullException.ThrowIfNull(handler);
        _handlers[channel] = handler;
        var link = _link;
        if (link is null || link.IsFailed)
        {
            throw new RedisConnectionException(Endpoint, $"not connected; '{channel}' will be subscribed on reconnect", _lastError);
        }

        await SubscribeOnAsync(link, [channel], cancellationToken);
    }

    public async Task UnsubscribeAsync(string channel, CancellationToken cancellationToken = default)
    {
        _handlers.TryRemove(channel, out _);
        if (_link is { IsFailed: false } link)
        {
            await SendAsync(link, "UNSUBSCRIBE", [channel], cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _shutdown.CancelAsync();
        await _heartbeat.DisposeAsync();
        if (_link is { } link)
        {
            Fail(link, new RedisConnectionException(Endpoint, "the subscriber was disposed", null));
            await link.ReadLoop;
        }

        _shutdown.Dispose();
        _writeLock.Dispose();
    }

    private async Task OpenAsync(CancellationToken cancellationToken)
    {
        var connection = await RespConnection.OpenAsync(_options, cancellationToken);
        var link = new SubscriberLink(connection);
        _link = link;
        link.ReadLoop = Task.Run(() => ReadLoopAsync(link), CancellationToken.None);
        try
        {
            var channels = _handlers.Keys.ToArray();
            if (channels.Length > 0)
            {
                await SubscribeOnAsync(link, channels, cancellationToken);
            }
        }
        catch (Exception ex)
        {
            Fail(link, ex);
            throw;
        }

        link.Ready = true;
    }

    private async Task SubscribeOnAsync(SubscriberLink link, string[] channels, CancellationToken cancellationToken)
    {
        var waits = new Task[channels.Length];
        for (var i = 0; i < channels.Length; i++)
        {
            waits[i] = _confirmations.GetOrAdd(channels[i], static _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }

        var args = new RedisArg[channels.Length];
        for (var i = 0; i < channels.Length; i++)
        {
            args[i] = channels[i];
        }

        await SendAsync(link, "SUBSCRIBE", args, cancellationToken);
        try
        {
            await Task.WhenAll(waits).WaitAsync(_options.CommandTimeout, cancellationToken);
        }
        catch (TimeoutException ex)
        {
            throw new RedisTimeoutException($"Redis {Endpoint}: SUBSCRIBE {string.Join(' ', channels)} not confirmed within {_options.CommandTimeout.TotalMilliseconds:0} ms.", ex);
        }
    }

    private async Task SendAsync(SubscriberLink link, string command, RedisArg[] args, CancellationToken cancellationToken)
    {
        var buffer = RespWriter.Encode(command, args, out var length);
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            var result = await link.Connection.Output.WriteAsync(buffer.AsMemory(0, length), cancellationToken);
            if (result.IsCompleted)
            {
                throw new RedisConnectionException(Endpoint, "the connection is closed", null);
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            Fail(link, ex);
            throw new RedisConnectionException(Endpoint, $"{command} could not be sent: {ex.Message}", ex);
        }
        finally
        {
            _writeLock.Release();
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task ReadLoopAsync(SubscriberLink link)
    {
        try
        {
            await link.Connection.ReadRepliesAsync(OnReply, static () => { });
        }
        catch (Exception ex)
        {
            Fail(link, ex);
        }
    }

    private void OnReply(RedisReply reply)
    {
        if (reply.IsError)
        {
            throw new RedisServerException(reply.AsString() ?? "", "SUBSCRIBE", $"Redis {Endpoint} subscriber");
        }

        if (reply.Kind is not (RedisReplyKind.Array or RedisReplyKind.Push) || reply.Items.Count < 2)
        {
            return; // +PONG under RESP3, and nothing else expected here.
        }

        switch (reply.Items[0].AsString())
        {
            case "message" when reply.Items.Count == 3:
                Deliver(reply.Items[1].AsString() ?? "", reply.Items[2].AsBytes() ?? []);
                break;
            case "subscribe":
                if (_confirmations.TryRemove(reply.Items[1].AsString() ?? "", out var confirmation))
                {
                    confirmation.TrySetResult();
                }

                break;
            default:
                break; // pong, unsubscribe
        }
    }

    private void Deliver(string channel, byte[] payload)
    {
        if (!_handlers.TryGetValue(channel, out var handler))
        {
            return;
        }

        try
        {
            handler(new RedisChannelMessage(channel, payload));
        }
        catch (Exception ex)
        {
            HandlerFailed?.Invoke(this, new RedisConnectionEventArgs(Endpoint, ex));
        }
    }

    private void Heartbeat()
    {
        var link = _link;
        if (link is null || link.IsFailed || !link.Ready)
        {
            return;
        }

        var silentFor = Stopwatch.GetElapsedTime(link.Connection.LastReceived);
        if (silentFor > _options.HeartbeatInterval * 3)
        {
            Fail(link, new RedisConnectionException(Endpoint, $"no data from the server for {silentFor.TotalMilliseconds:0} ms", null));
            return;
        }

        _ = SendAsync(link, "PING", [], CancellationToken.None).ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
    }

    private void Fail(SubscriberLink link, Exception error)
    {
        if (!link.MarkFailed())
        {
            return;
        }

        Interlocked.CompareExchange(ref _link, null, link);
        _lastError = error;
        link.Connection.Abort();
        var failure = error as RedisException ?? new RedisConnectionException(Endpoint, $"subscriber connection lost: {error.Message}", error);
        foreach (var key in _confirmations.Keys)
        {
            if (_confirmations.TryRemove(key, out var confirmation))
            {
                confirmation.TrySetException(failure);
            }
        }

        _ = link.Connection.DisposeAsync().AsTask().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
        if (_disposed == 0)
        {
            if (!link.Ready)
            {
                StartReconnect(); // a set-up attempt that failed: the reconnect loop reports only real losses.
                return;
            }

            var args = new RedisConnectionEventArgs(Endpoint, failure);
            ThreadPool.QueueUserWorkItem(_ => ConnectionFailed?.Invoke(this, args));
            StartReconnect();
        }
    }

    private void StartReconnect()
    {
        if (Interlocked.Exchange(ref _reconnecting, 1) != 0)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            var restored = await Reconnection.UntilConnectedAsync(_options, OpenAsync, ex => _lastError = ex, _shutdown.Token);
            Volatile.Write(ref _reconnecting, 0);
            if (restored)
            {
                _lastError = null;
                ConnectionRestored?.Invoke(this, new RedisConnectionEventArgs(Endpoint, null));
            }
        });
    }

    private sealed class SubscriberLink(RespConnection connection)
    {
        private int _failed;
        private volatile bool _ready;

        public RespConnection Connection { get; } = connection;

        public Task ReadLoop { get; set; } = Task.CompletedTask;

        public bool Ready { get => _ready; set => _ready = value; }

        public bool IsFailed => Volatile.Read(ref _failed) != 0;

        public bool MarkFailed() => Interlocked.Exchange(ref _failed, 1) == 0;
    }
}
