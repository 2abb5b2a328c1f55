using System.Text;
using KtZeroTrust.Redis;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Redis.Tests;

/// <summary>Round trips against a real redis-server, RESP2 and RESP3.</summary>
public sealed class RedisClientTests(RedisServerFixture server) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private RedisClient _redis = null!;
    private RedisClient _redis3 = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _redis = await RedisClient.ConnectAsync(RedisOptions.Parse(server.Configuration), Ct);
        _redis3 = await RedisClient.ConnectAsync(RedisOptions.Parse(server.Configuration + ",protocol=3"), Ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _redis.DisposeAsync();
        await _redis3.DisposeAsync();
    }

    [Fact]
    public async Task Strings_RoundTrip_WithTtlAndNx()
    {
        var key = Key();
        Assert.True(await _redis.PingAsync(Ct));
        Assert.Null(await _redis.StringGetAsync(key, Ct));
        Assert.True(await _redis.StringSetAsync(key, "v1", TimeSpan.FromMinutes(1), cancellationToken: Ct));
        Assert.False(await _redis.StringSetAsync(key, "v2", onlyIfNotExists: true, cancellationToken: Ct));
        Assert.Equal("v1", await _redis.StringGetTextAsync(key, Ct));
        var ttl = await _redis.KeyTimeToLiveAsync(key, Ct);
        Assert.NotNull(ttl);
        Assert.InRange(ttl.Value, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1));
        Assert.Equal("v1", Encoding.UTF8.GetString((await _redis.StringGetDeleteAsync(key, Ct))!));
        Assert.False(await _redis.KeyExistsAsync(key, Ct));
        Assert.Equal(1, await _redis.StringIncrementAsync(key, Ct));
        Assert.True(await _redis.KeyExpireAsync(key, TimeSpan.FromSeconds(30), Ct));
        Assert.Equal(1, await _redis.KeyDeleteAsync(key, Ct));
    }

    [Fact]
    public async Task BinaryValues_RoundTripExactly_IncludingCrLfAndZeroBytes()
    {
        var key = Key();
        var every = Enumerable.Range(0, 256).Select(i => (byte)i).Concat("\r\n\r\n"u8.ToArray()).ToArray();
        await _redis.StringSetAsync(key, every, cancellationToken: Ct);
        Assert.Equal(every, await _redis.StringGetAsync(key, Ct));
        Assert.Equal(every, await _redis3.StringGetAsync(key, Ct));
    }

    [Fact]
    public async Task SixteenMegabyteValue_RoundTrips()
    {
        var key = Key();
        var big = new byte[16 * 1024 * 1024];
        new Random(7).NextBytes(big);
        await _redis.StringSetAsync(key, big, cancellationToken: Ct);
        var back = await _redis.StringGetAsync(key, Ct);
        Assert.Equal(big.Length, back!.Length);
        Assert.True(big.AsSpan().SequenceEqual(back));
        await _redis.KeyDeleteAsync(key, Ct);
    }

    [Fact]
    public async Task TenThousandConcurrentCommands_ArePipelinedAndMatchedInOrder()
    {
        var prefix = Key();
        var sets = Enumerable.Range(0, 10_000).Select(i => _redis.StringSetAsync($"{prefix}:{i}", $"value-{i}", TimeSpan.FromMinutes(1), cancellationToken: Ct));
        Assert.All(await Task.WhenAll(sets), Assert.True);
        var gets = Enumerable.Range(0, 10_000).Select(i => _redis.StringGetTextAsync($"{prefix}:{i}", Ct)).ToArray();
        var values = await Task.WhenAll(gets);
        for (var i = 0; i < values.Length; i++)
        {
            Assert.Equal($"value-{i}", values[i]);
        }
    }

    [Fact]
    public async Task HashesAndSets_RoundTrip_SameUnderResp2AndResp3()
    {
        var hash = Key();
        await _redis.HashSetAsync(hash, [new("state", "Active"), new("bytes", new byte[] { 1, 2, 3 })], Ct);
        Assert.Equal("Active", Encoding.UTF8.GetString((await _redis.HashGetAsync(hash, "state", Ct))!));
        foreach (var client in new[] { _redis, _redis3 })
        {
            var all = await client.HashGetAllAsync(hash, Ct);
            Assert.Equal(2, all.Count);
            Assert.Equal(new byte[] { 1, 2, 3 }, all["bytes"]);
        }

        Assert.Equal(1, await _redis.HashDeleteAsync(hash, "bytes", Ct));

        var set = Key();
        Assert.True(await _redis.SetAddAsync(set, "a", Ct));
        Assert.False(await _redis.SetAddAsync(set, "a", Ct));
        Assert.True(await _redis.SetAddAsync(set, "b", Ct));
        Assert.True(await _redis3.SetContainsAsync(set, "b", Ct));
        Assert.Equal(["a", "b"], (await _redis3.SetMembersAsync(set, Ct)).Order());
        Assert.True(await _redis.SetRemoveAsync(set, "a", Ct));
    }

    [Fact]
    public async Task Scan_WalksEveryMatchingKey()
    {
        var prefix = Key();
        await Task.WhenAll(Enumerable.Range(0, 2500).Select(i => _redis.StringSetAsync($"{prefix}:{i}", "x", cancellationToken: Ct)));
        var found = new HashSet<string>();
        await foreach (var key in _redis.ScanAsync(prefix + ":*", 100, Ct))
        {
            found.Add(key);
        }

        Assert.Equal(2500, found.Count);
    }

    [Fact]
    public async Task Streams_AddTrimRangeAndConsumerGroups()
    {
        var stream = Key();
        for (var i = 0; i < 300; i++)
        {
            await _redis.StreamAddAsync(stream, [new("n", i), new("payload", $"event-{i}")], maxLengthApprox: 1_000_000, cancellationToken: Ct);
        }

        Assert.Equal(300, await _redis.StreamLengthAsync(stream, Ct));
        var first = await _redis.StreamRangeAsync(stream, count: 2, cancellationToken: Ct);
        Assert.Equal("event-0", first[0].GetString("payload"));
        var last = await _redis3.StreamRevRangeAsync(stream, count: 1, cancellationToken: Ct);
        Assert.Equal("event-299", last[0].GetString("payload"));

        foreach (var client in new[] { _redis, _redis3 })
        {
            var group = "g" + Guid.NewGuid().ToString("N");
            Assert.True(await client.StreamCreateGroupAsync(stream, group, "0", Ct));
            Assert.False(await client.StreamCreateGroupAsync(stream, group, "0", Ct));
            var batch = await client.StreamReadGroupAsync(stream, group, "c1", 50, cancellationToken: Ct);
            Assert.Equal(50, batch.Count);
            Assert.Equal("event-0", batch[0].GetString("payload"));
            var pending = await client.StreamReadGroupAsync(stream, group, "c1", 100, "0", Ct);
            Assert.Equal(50, pending.Count);
            Assert.Equal(50, await client.StreamAcknowledgeAsync(stream, group, [.. batch.Select(e => e.Id)], Ct));
            Assert.Empty(await client.StreamReadGroupAsync(stream, group, "c1", 100, "0", Ct));
        }

        // Approximate MAXLEN trims whole nodes: the stream ends up near the cap, never far above it.
        var capped = Key();
        for (var i = 0; i < 1000; i++)
        {
            await _redis.StreamAddAsync(capped, [new("n", i)], maxLengthApprox: 100, cancellationToken: Ct);
        }

        Assert.InRange(await _redis.StreamLengthAsync(capped, Ct), 100, 300);
    }

    [Fact]
    public async Task Scripts_RunBySha_FallingBackToEvalWhenUnknown()
    {
        await _redis.ExecuteAsync("SCRIPT", ["FLUSH"], Ct);
        var script = new RedisScript("return redis.call('SET', KEYS[1], ARGV[1]) and redis.call('GET', KEYS[1])");
        var key = Key();
        Assert.Equal("one", (await _redis.EvaluateAsync(script, [key], ["one"], Ct)).AsString());
        Assert.Equal("two", (await _redis.EvaluateAsync(script, [key], ["two"], Ct)).AsString());
    }

    [Fact]
    public async Task Transactions_RunWhole_WhileOtherCallersShareTheConnection()
    {
        var key = Key();
        var other = Key();

        // Other callers' commands race the transaction on the same connection; none may land inside MULTI/EXEC
        // (a queued GET would answer QUEUED instead of its value), and every reply still reaches its caller.
        var others = Enumerable.Range(0, 2_000).Select(i => _redis.StringSetAsync($"{other}:{i}", $"v{i}", TimeSpan.FromMinutes(1), cancellationToken: Ct)).ToList();
        var commands = Enumerable.Range(0, 500).Select(i => new RedisCommand("RPUSH", [key, $"item-{i}"])).ToList();
        var transactions = Enumerable.Range(0, 3).Select(_ => _redis.ExecuteTransactionAsync(commands, Ct)).ToList();
        foreach (var protocol in new[] { _redis, _redis3 })
        {
            var reply = await protocol.ExecuteTransactionAsync([new RedisCommand("SET", [other, "x"]), new RedisCommand("GET", [other])], Ct);
            Assert.Equal(["OK", "x"], reply.Items.Select(r => r.AsString()));
        }

        Assert.All(await Task.WhenAll(others), Assert.True);
        var results = await Task.WhenAll(transactions);
        Assert.All(results, r => Assert.Equal(500, r.Items.Count));
        Assert.Equal(Enumerable.Range(1, 500), results[0].Items.Select(r => (int)r.AsInt64()));
        Assert.Equal(1500, (await _redis.ExecuteAsync("LLEN", [key], Ct)).AsInt64());
        Assert.Equal("v1999", await _redis.StringGetTextAsync($"{other}:1999", Ct));
    }

    [Fact]
    public async Task Transactions_RefusedWhileQueued_RunNothing_AndFailingCommandsAreReportedPerElement()
    {
        var key = Key();

        // A command Redis refuses while queuing (wrong arity) aborts the whole transaction: nothing runs.
        var refused = await Assert.ThrowsAsync<RedisServerException>(() => _redis.ExecuteTransactionAsync(
            [new RedisCommand("SET", [key, "1"]), new RedisCommand("INCR", [])], Ct));
        Assert.Contains("wrong number of arguments", refused.Message, StringComparison.OrdinalIgnoreCase);
        Assert.False(await _redis.KeyExistsAsync(key, Ct));

        // A command that fails while running is one error element; the others ran.
        var reply = await _redis.ExecuteTransactionAsync([new RedisCommand("SET", [key, "text"]), new RedisCommand("INCR", [key]), new RedisCommand("GET", [key])], Ct);
        Assert.False(reply.Items[0].IsError);
        Assert.True(reply.Items[1].IsError);
        Assert.Equal("text", reply.Items[2].AsString());
        Assert.True(await _redis.PingAsync(Ct)); // the connection carries on
    }

    [Fact]
    public async Task ServerError_CarriesTheServersText()
    {
        var key = Key();
        await _redis.SetAddAsync(key, "member", Ct);
        var ex = await Assert.ThrowsAsync<RedisServerException>(() => _redis.StringGetAsync(key, Ct));
        Assert.Equal("WRONGTYPE", ex.ErrorCode);
        Assert.Contains("Operation against a key holding the wrong kind of value", ex.Message, StringComparison.Ordinal);
        Assert.Contains("GET", ex.Message, StringComparison.Ordinal);
        Assert.True(await _redis.PingAsync(Ct)); // the connection carries on
    }

    [Fact]
    public async Task Cancellation_CancelsTheCallerNotTheConnection()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _redis.PingAsync(cts.Token));

        // A command cancelled while its reply is outstanding: the late reply is discarded, later replies still match.
        using var soon = new CancellationTokenSource();
        var slow = _redis.ExecuteAsync("DEBUG", ["SLEEP", "0.2"], soon.Token);
        await soon.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => slow);
        var key = Key();
        await _redis.StringSetAsync(key, "after", cancellationToken: Ct);
        Assert.Equal("after", await _redis.StringGetTextAsync(key, Ct));
    }

    [Fact]
    public async Task DatabaseSelection_IsolatesKeys()
    {
        await using var db3 = await RedisClient.ConnectAsync(RedisOptions.Parse(server.Configuration + ",defaultDatabase=3"), Ct);
        var key = Key();
        await db3.StringSetAsync(key, "in-3", cancellationToken: Ct);
        Assert.Null(await _redis.StringGetAsync(key, Ct));
        Assert.Equal("in-3", await db3.StringGetTextAsync(key, Ct));
    }

    [Fact]
    public async Task PubSub_DeliversBinaryMessages_OnItsOwnConnection()
    {
        await using var subscriber = await RedisSubscriber.ConnectAsync(RedisOptions.Parse(server.Configuration), Ct);
        var channel = Key();
        var received = new TaskCompletionSource<RedisChannelMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        await subscriber.SubscribeAsync(channel, m => received.TrySetResult(m), Ct);
        Assert.True(subscriber.IsConnected);
        var payload = new byte[] { 0, 1, 13, 10, 200 };
        Assert.Equal(1, await _redis.PublishAsync(channel, payload, Ct));
        var message = await received.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(channel, message.Channel);
        Assert.Equal(payload, message.Payload);
    }

    [Fact]
    public async Task PubSub_WorksUnderResp3Push()
    {
        await using var subscriber = await RedisSubscriber.ConnectAsync(RedisOptions.Parse(server.Configuration + ",protocol=3"), Ct);
        var channel = Key();
        var received = new TaskCompletionSource<RedisChannelMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        await subscriber.SubscribeAsync(channel, m => received.TrySetResult(m), Ct);
        await _redis3.PublishAsync(channel, "hello", Ct);
        Assert.Equal("hello", Encoding.UTF8.GetString((await received.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct)).Payload));
    }

    private static string Key() => "test:" + Guid.NewGuid().ToString("N");
}
