using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;

namespace KtZeroTrust.Redis;

/// <summary>One stream entry: its id and its field/value pairs in order.</summary>
public sealed record RedisStreamEntry(string Id, IReadOnlyList<KeyValuePair<string, byte[]>> Fields)
{
    public string? GetString(string field)
    {
        foreach (var pair in Fields)
        {
            if (pair.Key == field)
            {
                return Encoding.UTF8.GetString(pair.Value);
            }
        }

        return null;
    }
}

/// <summary>A Lua script run by EVALSHA, falling back to EVAL (which caches it) when the server does not know it yet.</summary>
public sealed class RedisScript(string source)
{
    public string Source { get; } = source;

#pragma warning disable CA5350 // Redis names scripts by SHA-1; this is an identifier, not a security use.
    public string Sha1 { get; } = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(source)));
#pragma warning restore CA5350
}

/// <summary>The typed commands the product uses, over <see cref="IRedisClient.ExecuteAsync"/>.</summary>
public static class RedisCommands
{
    public static async Task<bool> PingAsync(this IRedisClient redis, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("PING", [], cancellationToken)).AsString() == "PONG";

    // Strings

    public static async Task<byte[]?> StringGetAsync(this IRedisClient redis, string key, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("GET", [key], cancellationToken)).AsBytes();

    public static async Task<string?> StringGetTextAsync(this IRedisClient redis, string key, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("GET", [key], cancellationToken)).AsString();

    /// <summary>SET with optional expiry and NX; false when NX found the key present.</summary>
    public static async Task<bool> StringSetAsync(this IRedisClient redis, string key, RedisArg value, TimeSpan? expiry = null, bool onlyIfNotExists = false, CancellationToken cancellationToken = default)
    {
        RedisReply reply;
        if (expiry is { } ttl)
        {
            var millis = Math.Max(1, (long)ttl.TotalMilliseconds);
            reply = onlyIfNotExists
                ? await redis.ExecuteAsync("SET", [key, value, "PX", millis, "NX"], cancellationToken)
                : await redis.ExecuteAsync("SET", [key, value, "PX", millis], cancellationToken);
        }
        else
        {
            reply = onlyIfNotExists
                ? await redis.ExecuteAsync("SET", [key, value, "NX"], cancellationToken)
                : await redis.ExecuteAsync("SET", [key, value], cancellationToken);
        }

        return !reply.IsNull;
    }

    /// <summary>GETDEL: reads and removes in one step (single-use values such as nonces).</summary>
    public static async Task<byte[]?> StringGetDeleteAsync(this IRedisClient redis, string key, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("GETDEL", [key], cancellationToken)).AsBytes();

    public static async Task<long> StringIncrementAsync(this IRedisClient redis, string key, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("INCR", [key], cancellationToken)).AsInt64();

    // Keys

    public static async Task<long> KeyDeleteAsync(this IRedisClient redis, string key, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("DEL", [key], cancellationToken)).AsInt64();

    public static async Task<bool> KeyExistsAsync(this IRedisClient redis, string key, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("EXISTS", [key], cancellationToken)).AsInt64() == 1;

    public static async Task<bool> KeyExpireAsync(this IRedisClient redis, string key, TimeSpan ttl, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("PEXPIRE", [key, Math.Max(1, (long)ttl.TotalMilliseconds)], cancellationToken)).AsInt64() == 1;

    /// <summary>Remaining time to live; null when the key has none or does not exist.</summary>
    public static async Task<TimeSpan?> KeyTimeToLiveAsync(this IRedisClient redis, string key, CancellationToken cancellationToken = default)
    {
        var ms = (await redis.ExecuteAsync("PTTL", [key], cancellationToken)).AsInt64();
        return ms < 0 ? null : TimeSpan.FromMilliseconds(ms);
    }

    /// <summary>Walks the keyspace with SCAN (never KEYS, which blocks the server).</summary>
    public static async IAsyncEnumerable<string> ScanAsync(this IRedisClient redis, string pattern, int pageSize = 1000, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var cursor = "0";
        do
        {
            var reply = await redis.ExecuteAsync("SCAN", [cursor, "MATCH", pattern, "COUNT", pageSize], cancellationToken);
            cursor = reply.Items[0].AsString() ?? "0";
            foreach (var key in reply.Items[1].Items)
            {
                yield return key.AsString()!;
            }
        }
        while (cursor != "0");
    }

    // Hashes

    public static async Task<long> HashSetAsync(this IRedisClient redis, string key, IReadOnlyList<KeyValuePair<string, RedisArg>> fields, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var args = new RedisArg[1 + (fields.Count * 2)];
        args[0] = key;
        for (var i = 0; i < fields.Count; i++)
        {
            args[1 + (2 * i)] = fields[i].Key;
            args[2 + (2 * i)] = fields[i].Value;
        }

        return (await redis.ExecuteAsync("HSET", args, cancellationToken)).AsInt64();
    }

    public static async Task<byte[]?> HashGetAsync(this IRedisClient redis, string key, string field, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("HGET", [key, field], cancellationToken)).AsBytes();

    public static async Task<Dictionary<string, byte[]>> HashGetAllAsync(this IRedisClient redis, string key, CancellationToken cancellationToken = default)
    {
        var items = (await redis.ExecuteAsync("HGETALL", [key], cancellationToken)).Items;
        var result = new Dictionary<string, byte[]>(items.Count / 2, StringComparer.Ordinal);
        for (var i = 0; i + 1 < items.Count; i += 2)
        {
            result[items[i].AsString()!] = items[i + 1].AsBytes() ?? [];
        }

        return result;
    }

    public static async Task<long> HashDeleteAsync(this IRedisClient redis, string key, string field, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("HDEL", [key, field], cancellationToken)).AsInt64();

    // Sets

    public static async Task<bool> SetAddAsync(this IRedisClient redis, string key, RedisArg member, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("SADD", [key, member], cancellationToken)).AsInt64() == 1;

    public static async Task<bool> SetRemoveAsync(this IRedisClient redis, string key, RedisArg member, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("SREM", [key, member], cancellationToken)).AsInt64() == 1;

    public static async Task<bool> SetContainsAsync(this IRedisClient redis, string key, RedisArg member, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("SISMEMBER", [key, member], cancellationToken)).AsInt64() == 1;

    public static async Task<IReadOnlyList<string>> SetMembersAsync(this IRedisClient redis, string key, CancellationToken cancellationToken = default)
        => [.. (await redis.ExecuteAsync("SMEMBERS", [key], cancellationToken)).Items.Select(i => i.AsString()!)];

    // Pub/sub (publishing; subscribing is RedisSubscriber's)

    /// <summary>Publishes; returns how many subscribers received it.</summary>
    public static async Task<long> PublishAsync(this IRedisClient redis, string channel, RedisArg message, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("PUBLISH", [channel, message], cancellationToken)).AsInt64();

    // Streams

    /// <summary>XADD with an approximate MAXLEN trim (cheap: whole macro nodes are dropped). Returns the entry id.</summary>
    public static async Task<string> StreamAddAsync(this IRedisClient redis, string key, IReadOnlyList<KeyValuePair<string, RedisArg>> fields, long? maxLengthApprox = null, string id = "*", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var args = new List<RedisArg>(4 + (fields.Count * 2)) { key };
        if (maxLengthApprox is { } max)
        {
            args.AddRange(["MAXLEN", "~", max]);
        }

        args.Add(id);
        foreach (var field in fields)
        {
            args.Add(field.Key);
            args.Add(field.Value);
        }

        return (await redis.ExecuteAsync("XADD", [.. args], cancellationToken)).AsString()!;
    }

    public static async Task<long> StreamLengthAsync(this IRedisClient redis, string key, CancellationToken cancellationToken = default)
        => (await redis.ExecuteAsync("XLEN", [key], cancellationToken)).AsInt64();

    public static async Task<IReadOnlyList<RedisStreamEntry>> StreamRangeAsync(this IRedisClient redis, string key, string start = "-", string end = "+", int? count = null, CancellationToken cancellationToken = default)
        => ParseEntries(count is { } c
            ? await redis.ExecuteAsync("XRANGE", [key, start, end, "COUNT", c], cancellationToken)
            : await redis.ExecuteAsync("XRANGE", [key, start, end], cancellationToken));

    /// <summary>XREVRANGE: newest first, from <paramref name="end"/> down to <paramref name="start"/>.</summary>
    public static async Task<IReadOnlyList<RedisStreamEntry>> StreamRevRangeAsync(this IRedisClient redis, string key, string end = "+", string start = "-", int? count = null, CancellationToken cancellationToken = default)
        => ParseEntries(count is { } c
            ? await redis.ExecuteAsync("XREVRANGE", [key, end, start, "COUNT", c], cancellationToken)
            : await redis.ExecuteAsync("XREVRANGE", [key, end, start], cancellationToken));

    /// <summary>XGROUP CREATE ... MKSTREAM; false when the group already exists.</summary>
    public static async Task<bool> StreamCreateGroupAsync(this IRedisClient redis, string key, string group, string startId = "$", CancellationToken cancellationToken = default)
    {
        try
        {
            await redis.ExecuteAsync("XGROUP", ["CREATE", key, group, startId, "MKSTREAM"], cancellationToken);
            return true;
        }
        catch (RedisServerException ex) when (ex.ErrorCode == "BUSYGROUP")
        {
            return false;
        }
    }

    /// <summary>
    /// XREADGROUP without BLOCK (a blocking read would hold up every caller of the shared connection; poll instead, or
    /// use a dedicated client). <paramref name="id"/> ">" reads new entries, "0" this consumer's pending ones.
    /// </summary>
    public static async Task<IReadOnlyList<RedisStreamEntry>> StreamReadGroupAsync(this IRedisClient redis, string key, string group, string consumer, int count, string id = ">", CancellationToken cancellationToken = default)
    {
        var reply = await redis.ExecuteAsync("XREADGROUP", ["GROUP", group, consumer, "COUNT", count, "STREAMS", key, id], cancellationToken);
        if (reply.IsNull || reply.Items.Count == 0)
        {
            return [];
        }

        // RESP2: [[key, entries]]; RESP3: {key: entries}.
        return reply.Kind == RedisReplyKind.Map ? ParseEntries(reply.Items[1]) : ParseEntries(reply.Items[0].Items[1]);
    }

    public static async Task<long> StreamAcknowledgeAsync(this IRedisClient redis, string key, string group, IReadOnlyList<string> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var args = new RedisArg[2 + ids.Count];
        args[0] = key;
        args[1] = group;
        for (var i = 0; i < ids.Count; i++)
        {
            args[2 + i] = ids[i];
        }

        return (await redis.ExecuteAsync("XACK", args, cancellationToken)).AsInt64();
    }

    // Scripts

    public static async Task<RedisReply> EvaluateAsync(this IRedisClient redis, RedisScript script, IReadOnlyList<string> keys, IReadOnlyList<RedisArg> args, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(script);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(args);
        var all = new RedisArg[2 + keys.Count + args.Count];
        all[1] = keys.Count;
        for (var i = 0; i < keys.Count; i++)
        {
            all[2 + i] = keys[i];
        }

        for (var i = 0; i < args.Count; i++)
        {
            all[2 + keys.Count + i] = args[i];
        }

        try
        {
            all[0] = script.Sha1;
            return await redis.ExecuteAsync("EVALSHA", all, cancellationToken);
        }
        catch (RedisServerException ex) when (ex.ErrorCode == "NOSCRIPT")
        {
            all[0] = script.Source;
            return await redis.ExecuteAsync("EVAL", all, cancellationToken);
        }
    }

    private static List<RedisStreamEntry> ParseEntries(RedisReply reply)
    {
        var entries = new List<RedisStreamEntry>(reply.Items.Count);
        foreach (var item in reply.Items)
        {
            if (item.Items.Count < 2)
            {
                continue; // a deleted entry still pending in a group reads as [id, nil]
            }

            var raw = item.Items[1].Items;
            var fields = new List<KeyValuePair<string, byte[]>>(raw.Count / 2);
            for (var i = 0; i + 1 < raw.Count; i += 2)
            {
                fields.Add(new(raw[i].AsString()!, raw[i + 1].AsBytes() ?? []));
            }

            entries.Add(new RedisStreamEntry(item.Items[0].AsString()!, fields));
        }

        return entries;
    }

}
