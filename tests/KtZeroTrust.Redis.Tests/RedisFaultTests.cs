using System.Net;
using System.Net.Sockets;
using System.Text;
using KtZeroTrust.Redis;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Redis.Tests;

/// <summary>Faults: the server dies and returns, a peer speaks garbage or nothing, nothing listens. Callers never hang.</summary>
public sealed class RedisFaultTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ServerRestartMidTraffic_CallersGetResultsOrErrors_AndTheClientReconnects()
    {
        await using var server = new RedisServerFixture();
        await server.InitializeAsync();
        var options = RedisOptions.Parse(server.Configuration + ",commandTimeout=1000");
        await using var redis = await RedisClient.ConnectAsync(options, Ct);
        await using var subscriber = await RedisSubscriber.ConnectAsync(options, Ct);
        var failed = 0;
        var restored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        redis.ConnectionFailed += (_, _) => Interlocked.Increment(ref failed);
        subscriber.ConnectionRestored += (_, _) => restored.TrySetResult();
        var messages = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await subscriber.SubscribeAsync("restart:channel", m => messages.Enqueue(Encoding.UTF8.GetString(m.Payload)), Ct);

        using var stop = new CancellationTokenSource();
        long ok = 0, errors = 0;
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            var i = 0;
            while (!stop.IsCancellationRequested)
            {
                var key = $"restart:{w}:{i++}";
                try
                {
                    await redis.StringSetAsync(key, key, cancellationToken: Ct);
                    var back = await redis.StringGetTextAsync(key, Ct);
                    Assert.True(back is null || back == key, $"wrong value for {key}: {back}"); // null: the restarted server is empty
                    Interlocked.Increment(ref ok);
                }
                catch (RedisException)
                {
                    Interlocked.Increment(ref errors);
                    await Task.Delay(5, Ct);
                }
            }
        }, Ct)).ToArray();

        await Eventually.Until(() => Task.FromResult(Interlocked.Read(ref ok)), n => n > 200, "traffic before the restart");
        await server.StopAsync();
        await Eventually.Until(() => Task.FromResult(Interlocked.Read(ref errors)), n => n > 0, "callers to see the outage");
        await server.StartAsync();
        var before = Interlocked.Read(ref ok);
        await Eventually.Until(() => Task.FromResult(Interlocked.Read(ref ok)), n => n > before + 200, "traffic after the restart");
        await stop.CancelAsync();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(30), Ct); // nobody hangs

        Assert.True(redis.IsConnected);
        Assert.True(failed >= 1);
        await restored.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await Eventually.Until(async () =>
        {
            await redis.PublishAsync("restart:channel", "after", Ct);
            return messages.Contains("after");
        }, seen => seen, "the subscriber to be resubscribed");
    }

    [Fact]
    public async Task NothingListening_ConnectFailsSayingWhereAndWhy()
    {
        var port = FreePorts.Next();
        var ex = await Assert.ThrowsAsync<RedisConnectionException>(() => RedisClient.ConnectAsync(RedisOptions.Parse($"127.0.0.1:{port}"), Ct));
        Assert.Contains($"127.0.0.1:{port}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("ConnectionRefused", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AbortConnectFalse_FailsFastWhileDown_ThenConnectsWhenTheServerAppears()
    {
        await using var server = new RedisServerFixture();
        await server.InitializeAsync();
        await server.StopAsync();
        await using var redis = await RedisClient.ConnectAsync(RedisOptions.Parse(server.Configuration + ",abortConnect=false"), Ct);
        Assert.False(redis.IsConnected);
        var ex = await Assert.ThrowsAsync<RedisConnectionException>(() => redis.PingAsync(Ct));
        Assert.Contains("not connected", ex.Message, StringComparison.Ordinal);
        await server.StartAsync();
        await Eventually.Until(() => Task.FromResult(redis.IsConnected), c => c, "the background reconnect");
        Assert.True(await redis.PingAsync(Ct));
    }

    [Fact]
    public async Task SlowReply_TimesOutTheCaller_LateReplyIsDiscarded()
    {
        await using var server = new RedisServerFixture();
        await server.InitializeAsync();
        await using var redis = await RedisClient.ConnectAsync(RedisOptions.Parse(server.Configuration + ",commandTimeout=200"), Ct);
        var ex = await Assert.ThrowsAsync<RedisTimeoutException>(() => redis.ExecuteAsync("DEBUG", ["SLEEP", "0.6"], Ct));
        Assert.Contains("DEBUG", ex.Message, StringComparison.Ordinal);
        await Eventually.Until(async () =>
        {
            try
            {
                return await redis.StringSetAsync("after-timeout", "x", cancellationToken: Ct) && await redis.StringGetTextAsync("after-timeout", Ct) == "x";
            }
            catch (RedisException)
            {
                return false;
            }
        }, ok => ok, "commands after the timeout to get their own replies");
    }

    [Fact]
    public async Task GarbageServer_IsAProtocolError_NotAHang()
    {
        await using var fake = new FakeServer(_ => "?this is not resp\r\n"u8.ToArray());
        await using var redis = await RedisClient.ConnectAsync(RedisOptions.Parse($"127.0.0.1:{fake.Port},name=,commandTimeout=2000"), Ct);
        var ex = await Assert.ThrowsAsync<RedisProtocolException>(() => redis.PingAsync(Ct).WaitAsync(TimeSpan.FromSeconds(20), Ct));
        Assert.Contains("not speaking RESP", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GarbageDuringHandshake_FailsConnect()
    {
        await using var fake = new FakeServer(_ => "HTTP/1.1 400 Bad Request\r\n\r\n"u8.ToArray());
        await Assert.ThrowsAsync<RedisProtocolException>(() => RedisClient.ConnectAsync(RedisOptions.Parse($"127.0.0.1:{fake.Port},protocol=3"), Ct).WaitAsync(TimeSpan.FromSeconds(20), Ct));
    }

    [Fact]
    public async Task UnsolicitedReply_IsAProtocolError()
    {
        // The peer answers one command with two replies: the second matches no command.
        await using var fake = new FakeServer(_ => "+PONG\r\n+PONG\r\n"u8.ToArray());
        await using var redis = await RedisClient.ConnectAsync(RedisOptions.Parse($"127.0.0.1:{fake.Port},name="), Ct);
        var failed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        redis.ConnectionFailed += (_, e) => failed.TrySetResult(e.Error);
        await redis.PingAsync(Ct);
        Assert.IsType<RedisProtocolException>(await failed.Task.WaitAsync(TimeSpan.FromSeconds(20), Ct));
    }

    [Fact]
    public async Task SilentServer_TimesOut_AndHalfARepliedValueToo()
    {
        await using var silent = new FakeServer(_ => []);
        await using var redis = await RedisClient.ConnectAsync(RedisOptions.Parse($"127.0.0.1:{silent.Port},name=,commandTimeout=300"), Ct);
        await Assert.ThrowsAsync<RedisTimeoutException>(() => redis.PingAsync(Ct).WaitAsync(TimeSpan.FromSeconds(20), Ct));

        await using var half = new FakeServer(_ => "$100\r\nonly-part"u8.ToArray());
        await using var redis2 = await RedisClient.ConnectAsync(RedisOptions.Parse($"127.0.0.1:{half.Port},name=,commandTimeout=300"), Ct);
        await Assert.ThrowsAsync<RedisTimeoutException>(() => redis2.StringGetAsync("k", Ct).WaitAsync(TimeSpan.FromSeconds(20), Ct));
    }

    /// <summary>A TCP server that answers every received chunk with what <c>respond</c> returns.</summary>
    private sealed class FakeServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _accept;

        public FakeServer(Func<byte[], byte[]> respond)
        {
            _listener.Start();
            Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
            _accept = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    TcpClient client;
                    try
                    {
                        client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }

                    _ = Task.Run(async () =>
                    {
                        using (client)
                        {
                            var stream = client.GetStream();
                            var buffer = new byte[4096];
                            try
                            {
                                int read;
                                while ((read = await stream.ReadAsync(buffer, _stop.Token)) > 0)
                                {
                                    var reply = respond(buffer[..read]);
                                    if (reply.Length > 0)
                                    {
                                        await stream.WriteAsync(reply, _stop.Token);
                                    }
                                }
                            }
                            catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException)
                            {
                            }
                        }
                    });
                }
            });
        }

        public int Port { get; }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _accept;
            _stop.Dispose();
        }
    }
}
