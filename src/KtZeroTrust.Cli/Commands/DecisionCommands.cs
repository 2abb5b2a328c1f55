using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Monitoring.Ocsf;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.Cli.Commands;

/// <summary>
/// <c>ztctl decisions tail|search|export</c>: the decision stream for SOC staff, from the local JSON-lines log (default) or,
/// with <c>--redis</c>, from the Redis Stream every node writes to. A readable table by default, <c>--json</c> for lines.
/// </summary>
internal static class DecisionCommands
{
    private static readonly Option<string?> Outcome = new("--outcome") { Description = "allow or deny" };
    private static readonly Option<string?> Device = new("--device") { Description = "Only this device serial" };
    private static readonly Option<string?> User = new("--user") { Description = "Only this user" };
    private static readonly Option<string?> Reason = new("--reason") { Description = "Only this reason code (e.g. device_revoked)" };
    private static readonly Option<string?> Stream = new("--stream") { Description = "Redis Stream key (with --redis)", DefaultValueFactory = _ => RedisStreamSink.DefaultStreamKey };

    public static Command Create()
    {
        var max = new Option<int?>("--max") { Description = "Stop after this many matching decisions" };
        var duration = new Option<TimeSpan?>("--for") { Description = "Stop after this long (e.g. 00:01:00); default: until Ctrl+C" };
        var tail = new Command("tail", "Follow decisions as they happen") { Outcome, Device, User, Reason, Stream, max, duration };
        tail.SetAction(CliContext.Run(async (ctx, ct) =>
        {
            var filter = Filter(ctx);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            if (ctx.ParseResult.GetValue(duration) is { } limit)
            {
                stop.CancelAfter(limit);
            }

            var limitCount = ctx.ParseResult.GetValue(max);
            var shown = 0;
            var printer = new Printer(ctx);
            // On standard error, so that a pipe of the output sees decisions only.
            await ctx.Error.WriteLineAsync(ctx.RedisConfiguration is { Length: > 0 } redis
                ? $"Waiting for decisions on the Redis Stream '{ctx.ParseResult.GetValue(Stream)}' at {redis.Split(',')[0]} (Ctrl+C to stop)..."
                : $"Waiting for decisions in {LogPath(ctx)}{(File.Exists(LogPath(ctx)) ? "" : " (not written yet)")} (Ctrl+C to stop)...");
            try
            {
                await foreach (var e in FollowAsync(ctx, stop.Token))
                {
                    if (!filter(e))
                    {
                        continue;
                    }

                    printer.Print(e);
                    if (++shown >= limitCount)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
            }

            return ExitCodes.Success;
        }));

        var since = new Option<DateTimeOffset?>("--since") { Description = "From this time (ISO 8601)" };
        var until = new Option<DateTimeOffset?>("--until") { Description = "Up to this time (ISO 8601)" };
        var limit = new Option<int>("--limit") { Description = "At most this many (newest last)", DefaultValueFactory = _ => 1000 };
        var search = new Command("search", "Find past decisions") { Outcome, Device, User, Reason, Stream, since, until, limit };
        search.SetAction(CliContext.Run(async (ctx, ct) =>
        {
            var filter = Filter(ctx);
            var from = ctx.ParseResult.GetValue(since) ?? DateTimeOffset.MinValue;
            var to = ctx.ParseResult.GetValue(until) ?? DateTimeOffset.MaxValue;
            var found = new Queue<DecisionEvent>();
            var max = Math.Max(1, ctx.ParseResult.GetValue(limit));
            var source = ctx.AdminApi() is { } api ? ReadFromServerAsync(ctx, api, max, ct) : ReadAllAsync(ctx, ct);
            await foreach (var e in source)
            {
                if (e.Time >= from && e.Time <= to && filter(e))
                {
                    found.Enqueue(e);
                    if (found.Count > max)
                    {
                        found.Dequeue();
                    }
                }
            }

            var printer = new Printer(ctx);
            foreach (var e in found)
            {
                printer.Print(e);
            }

            return found.Count == 0 ? ExitCodes.NotFound : ExitCodes.Success;
        }));

        var output = new Option<string?>("--out") { Description = "Append to this file instead of standard output" };
        var group = new Option<string?>("--group") { Description = "With --redis: read as this consumer group (created at the stream's start if new); each entry is acknowledged once written, so a restarted exporter resumes where it stopped" };
        var consumer = new Option<string>("--consumer") { Description = "Consumer name within --group", DefaultValueFactory = _ => Environment.MachineName };
        var follow = new Option<bool>("--follow") { Description = "With --group: keep exporting new decisions until Ctrl+C or --for" };
        var exportFor = new Option<TimeSpan?>("--for") { Description = "With --follow: stop after this long" };
        var export = new Command("export", "Export decisions as OCSF JSON lines (HTTP Activity, Authentication, Detection Finding, Entity Management)")
        {
            Outcome, Device, User, Reason, Stream, since, until, output, group, consumer, follow, exportFor,
        };
        export.SetAction(CliContext.Run(async (ctx, ct) =>
        {
            var filter = Filter(ctx);
            var from = ctx.ParseResult.GetValue(since) ?? DateTimeOffset.MinValue;
            var to = ctx.ParseResult.GetValue(until) ?? DateTimeOffset.MaxValue;
            bool Wanted(DecisionEvent e) => e.Time >= from && e.Time <= to && filter(e);
            var path = ctx.ParseResult.GetValue(output);
            StreamWriter? file = null;

            // The file is created at the first decision written: a source that cannot be read leaves no empty file behind.
            TextWriter Writer() => path is null ? ctx.Out : file ??= new StreamWriter(path, append: true, new UTF8Encoding(false));
            try
            {
                var count = 0;
                if (ctx.ParseResult.GetValue(group) is { } groupName)
                {
                    if (ctx.RedisConfiguration is not { Length: > 0 })
                    {
                        throw new FormatException("--group reads the Redis Stream: give --redis (or ZT_REDIS).");
                    }

                    using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    if (ctx.ParseResult.GetValue(exportFor) is { } limit)
                    {
                        stop.CancelAfter(limit);
                    }

                    try
                    {
                        count = await ExportGroupAsync(ctx.OpenRedis(), ctx.ParseResult.GetValue(Stream)!, groupName, ctx.ParseResult.GetValue(consumer)!,
                            ctx.ParseResult.GetValue(follow), Wanted, Writer, stop.Token);
                    }
                    catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                    {
                    }
                }
                else
                {
                    await foreach (var e in ReadAllAsync(ctx, ct))
                    {
                        if (Wanted(e))
                        {
                            await Writer().WriteLineAsync(Encoding.UTF8.GetString(OcsfJson.ToUtf8(e)).AsMemory(), ct);
                            count++;
                        }
                    }
                }

                await Writer().FlushAsync(ct);
                if (path is not null)
                {
                    ctx.Error.WriteLine($"{count} decisions exported to {path}");
                }

                return ExitCodes.Success;
            }
            finally
            {
                if (file is not null)
                {
                    await file.DisposeAsync();
                }
            }
        }));

        return new Command("decisions", "The decision stream: every allow and deny, with its reason") { tail, search, export };
    }

    /// <summary>
    /// Consumer-group export: pending entries of this consumer first (written before a crash but not acknowledged), then
    /// new ones; an entry is acknowledged only after its line is flushed, so delivery is at least once (OCSF
    /// <c>metadata.uid</c> is the decision id for de-duplication).
    /// </summary>
    private static async Task<int> ExportGroupAsync(RedisConnection connection, string key, string group, string consumer, bool follow, Func<DecisionEvent, bool> wanted, Func<TextWriter> output, CancellationToken ct)
    {
        var redis = await connection.DatabaseAsync();
        try
        {
            await redis.StreamCreateConsumerGroupAsync(key, group, "0", createStream: true);
        }
        catch (RedisServerException ex) when (ex.Message.StartsWith("BUSYGROUP", StringComparison.Ordinal))
        {
            // the group exists: continue where it stands
        }

        var writer = output(); // only once Redis answered
        var count = 0;
        var position = "0"; // this consumer's pending entries, then ">" for new ones
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var page = await redis.StreamReadGroupAsync(key, group, consumer, position, 1000);
            if (page.Length == 0)
            {
                if (position == "0")
                {
                    position = ">";
                    continue;
                }

                if (!follow)
                {
                    return count;
                }

                await Task.Delay(200, ct);
                continue;
            }

            foreach (var entry in page)
            {
                foreach (var e in DecisionStreamEntry.Read(entry, out _).Select(j => j.Event).Where(wanted))
                {
                    await writer.WriteLineAsync(Encoding.UTF8.GetString(OcsfJson.ToUtf8(e)).AsMemory(), ct);
                    count++;
                }
            }

            await writer.FlushAsync(ct);
            await redis.StreamAcknowledgeAsync(key, group, [.. page.Select(p => p.Id)]);
        }
    }

    private static Func<DecisionEvent, bool> Filter(CliContext ctx)
    {
        var outcome = ctx.ParseResult.GetValue(Outcome)?.ToLowerInvariant();
        var device = ctx.ParseResult.GetValue(Device);
        var user = ctx.ParseResult.GetValue(User);
        var reason = ctx.ParseResult.GetValue(Reason);
        if (outcome is not (null or "allow" or "deny"))
        {
            throw new FormatException("--outcome is allow or deny.");
        }

        return e => (outcome is null || (outcome == "allow") == (e.Outcome == DecisionOutcome.Allow))
            && (device is null || e.Subject == device)
            && (user is null || e.Subject == user)
            && (reason is null || ReasonCodes.Name(e.Reason) == reason);
    }

    /// <summary>From the server's admin API (its decision log), oldest first; the filters are applied there and here.</summary>
    private static async IAsyncEnumerable<DecisionEvent> ReadFromServerAsync(CliContext ctx, AdminApiClient api, int limit, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        using (api)
        {
            var query = new List<string> { $"limit={limit}" };
            void Add(string name, string? value)
            {
                if (!string.IsNullOrEmpty(value))
                {
                    query.Add($"{name}={Uri.EscapeDataString(value)}");
                }
            }

            Add("outcome", ctx.ParseResult.GetValue(Outcome));
            Add("device", ctx.ParseResult.GetValue(Device));
            Add("user", ctx.ParseResult.GetValue(User));
            Add("reason", ctx.ParseResult.GetValue(Reason));
            var page = await api.GetAsync("api/decisions?" + string.Join('&', query), ct);
            foreach (var item in page.EnumerateArray().Reverse())
            {
                if (Parse(item.GetRawText()) is { } e)
                {
                    yield return e;
                }
            }
        }
    }

    /// <summary>Everything stored: the Redis Stream, or the log file and its rolled predecessors (oldest first).</summary>
    private static async IAsyncEnumerable<DecisionEvent> ReadAllAsync(CliContext ctx, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        if (ctx.RedisConfiguration is { Length: > 0 })
        {
            var redis = await ctx.OpenRedis().DatabaseAsync();
            var last = "-";
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                var page = await redis.StreamRangeAsync(ctx.ParseResult.GetValue(Stream)!, last, "+", 1000);
                foreach (var entry in page)
                {
                    foreach (var e in DecisionStreamEntry.Read(entry, out _))
                    {
                        yield return e.Event;
                    }
                }

                if (page.Length < 1000)
                {
                    yield break;
                }

                last = "(" + page[^1].Id;
            }
        }

        await foreach (var e in DecisionLogReader.ReadAsync(LogPath(ctx), cancellationToken: ct))
        {
            yield return e.Event;
        }
    }

    /// <summary>New decisions as they are written: polls the stream (XRANGE after the last id) or the end of the log file.</summary>
    private static async IAsyncEnumerable<DecisionEvent> FollowAsync(CliContext ctx, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        if (ctx.RedisConfiguration is { Length: > 0 })
        {
            var redis = await ctx.OpenRedis().DatabaseAsync();
            var key = ctx.ParseResult.GetValue(Stream)!;
            var newest = await redis.StreamRangeAsync(key, count: 1, messageOrder: Order.Descending);
            var last = newest.Length == 0 ? "0-0" : newest[0].Id.ToString();
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                var page = await redis.StreamRangeAsync(key, "(" + last, "+", 1000);
                foreach (var entry in page)
                {
                    last = entry.Id.ToString();
                    foreach (var e in DecisionStreamEntry.Read(entry, out _))
                    {
                        yield return e.Event;
                    }
                }

                if (page.Length == 0)
                {
                    await Task.Delay(200, ct);
                }
            }
        }

        var path = LogPath(ctx);
        long position = File.Exists(path) ? new FileInfo(path).Length : 0;
        var pending = new StringBuilder();
        while (true)
        {
            if (File.Exists(path) && new FileInfo(path).Length < position)
            {
                position = 0; // rolled over: the new file starts from the top
            }

            if (File.Exists(path))
            {
                await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                stream.Position = position;
                using var reader = new StreamReader(stream, Encoding.UTF8);
                pending.Append(await reader.ReadToEndAsync(ct));
                position = stream.Position;
            }

            var text = pending.ToString();
            var end = text.LastIndexOf('\n');
            if (end >= 0)
            {
                pending.Clear().Append(text[(end + 1)..]); // a line still being written waits for its end
                foreach (var line in text[..end].Split('\n'))
                {
                    if (Parse(line) is { } e)
                    {
                        yield return e;
                    }
                }
            }
            else
            {
                await Task.Delay(200, ct);
            }
        }
    }

    private static string LogPath(CliContext ctx) => Path.Combine(ctx.DataDirectory, "decisions.jsonl");

    private static DecisionEvent? Parse(string? json) => DecisionLogReader.TryParse(json);

    private sealed class Printer(CliContext ctx)
    {
        private bool _header;

        public void Print(DecisionEvent e)
        {
            if (ctx.AsJson)
            {
                ctx.Out.WriteLine(Encoding.UTF8.GetString(DecisionJson.ToUtf8(e)));
                return;
            }

            if (!_header)
            {
                ctx.Out.WriteLine($"{"TIME (UTC)",-24} {"OUTCOME",-7} {"REASON",-26} {"SUBJECT",-18} {"SOURCE",-16} {"LISTENER",-10} ROUTE / PATH");
                _header = true;
            }

            ctx.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{e.Time.UtcDateTime:yyyy-MM-dd HH:mm:ss.fff}  {(e.Outcome == DecisionOutcome.Allow ? "allow" : "DENY"),-7} {ReasonCodes.Name(e.Reason),-26} {e.Subject ?? "-",-18} {e.SourceAddress ?? "-",-16} {e.Listener,-10} {e.Route ?? "-"} {e.Path}"));
        }
    }
}
