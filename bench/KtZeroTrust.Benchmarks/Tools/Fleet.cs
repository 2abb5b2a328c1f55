using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using KtZeroTrust.Benchmarks.Infrastructure;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Redis;
using StackExchange.Redis;

namespace KtZeroTrust.Benchmarks.Tools;

/// <summary>
/// The femtocell fleet of <c>deploy/multi-host/run.sh</c>, run from its own network namespace against a real
/// deployment. Three commands, each printing <c>RESULT label.key=value</c> lines for the script:
/// <list type="bullet">
/// <item><c>load</c>: known units (their LDevIDs) and unknown ones (certificates forged with the operator CA, never
/// registered) keep calling the gateways, each unit pinned to one gateway and moving to the next when its connection
/// fails (what a unit behind a load balancer sees when a node dies). Counts every answer per second and gateway,
/// keeps every decision id the answers carry.</item>
/// <item><c>propagation</c>: units revoked one by one through the console's admin API (the SOC's path); for each, the
/// time until every gateway denies it.</item>
/// <item><c>decisions</c>: how many of the kept decision ids are in the shared Redis Stream (waits for spools to replay).</item>
/// </list>
/// </summary>
internal static class Fleet
{
    public static Task<int> RunAsync(string[] args) => args.FirstOrDefault() switch
    {
        "load" => LoadAsync(args[1..]),
        "propagation" => PropagationAsync(args[1..]),
        "decisions" => DecisionsAsync(args[1..]),
        _ => Usage(),
    };

    private static Task<int> Usage()
    {
        Console.Error.WriteLine("usage: fleet load|propagation|decisions --label L ... (see deploy/multi-host/run.sh)");
        return Task.FromResult(1);
    }

    private static async Task<int> LoadAsync(string[] args)
    {
        var label = Text(args, "--label", "load");
        var layout = new DevPkiLayout(Text(args, "--pki", "certs-dev"));
        var gateways = Text(args, "--gateways", "https://localhost:8443").Split(',').Select(g => new Uri(new Uri(g), "/femto/status")).ToArray();
        var serials = Serials(args);
        var unknownCount = Propagation.Option(args, "--unknown", 2);
        var seconds = Propagation.Option(args, "--seconds", 10);
        var intervalMs = Propagation.Option(args, "--interval-ms", 0);
        var idsPath = Text(args, "--ids", "");
        var runningPath = Text(args, "--running-file", "");
        var unitsAnswered = 0;

        using var tlsRoot = PemFiles.ReadCertificate(layout.TlsRootCertificate);
        var known = serials.Select(s => PemFiles.ReadCertificateWithKey(layout.LDevIdCertificate(s), layout.LDevIdKey(s))).ToList();
        var unknown = ForgeUnknown(layout, unknownCount);
        var counts = new Counts(gateways.Length, seconds + 60);
        var ids = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var clock = Stopwatch.StartNew();

        async Task UnitAsync(X509Certificate2 certificate, int index, bool isKnown)
        {
            using var client = DeviceClients.Create(certificate, tlsRoot, TimeSpan.FromSeconds(5));
            var gateway = index % gateways.Length;
            var answered = false;
            while (!stop.IsCancellationRequested)
            {
                var second = (int)clock.Elapsed.TotalSeconds;
                Interlocked.Increment(ref counts.Sent);
                try
                {
                    using var response = await client.GetAsync(gateways[gateway], stop.Token);
                    var body = await response.Content.ReadAsStringAsync(stop.Token);
                    if (DecisionId(body) is { } id)
                    {
                        ids.Enqueue(id);
                    }

                    counts.Answer(second, gateway, isKnown, response.StatusCode == HttpStatusCode.OK, ReasonCode(body));
                    if (!answered)
                    {
                        answered = true;
                        if (Interlocked.Increment(ref unitsAnswered) == known.Count + unknown.Count && runningPath.Length > 0)
                        {
                            await File.WriteAllTextAsync(runningPath, "running\n", CancellationToken.None); // every unit has had an answer: the caller may act
                        }
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !stop.IsCancellationRequested)
                {
                    // The node is gone or does not answer: the unit tries the next one, as behind a load balancer.
                    counts.Error(second, gateway);
                    gateway = (gateway + 1) % gateways.Length;
                    await Delay(100, stop.Token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or HttpRequestException)
                {
                    Interlocked.Decrement(ref counts.Sent); // cut by the end of the run, not an answer nor a failure
                }

                if (intervalMs > 0)
                {
                    await Delay(intervalMs, stop.Token);
                }
            }
        }

        var units = known.Select((c, i) => UnitAsync(c, i, isKnown: true))
            .Concat(unknown.Select((c, i) => UnitAsync(c, i, isKnown: false)))
            .ToList();
        await Task.WhenAll(units);
        var elapsed = clock.Elapsed.TotalSeconds;
        known.Concat(unknown).ToList().ForEach(c => c.Dispose());

        if (idsPath.Length > 0)
        {
            await File.WriteAllLinesAsync(idsPath, ids);
        }

        counts.Print(label, elapsed, seconds, gateways);
        return 0;
    }

    private static async Task<int> PropagationAsync(string[] args)
    {
        var label = Text(args, "--label", "propagation");
        var layout = new DevPkiLayout(Text(args, "--pki", "certs-dev"));
        var gateways = Text(args, "--gateways", "https://localhost:8443").Split(',').Select(g => new Uri(new Uri(g), "/femto/status")).ToArray();
        var console = new Uri(Text(args, "--console", "https://localhost:9444"));
        var token = Environment.GetEnvironmentVariable("ZT_TOKEN") ?? throw new InvalidOperationException("ZT_TOKEN: a console session token is needed.");
        var serials = Serials(args);

        using var tlsRoot = PemFiles.ReadCertificate(layout.TlsRootCertificate);
        using var admin = ConsoleClient(console, token, tlsRoot);
        var all = new List<double>();
        var calls = new List<double>();
        foreach (var serial in serials)
        {
            using var certificate = PemFiles.ReadCertificateWithKey(layout.LDevIdCertificate(serial), layout.LDevIdKey(serial));
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var probes = gateways.Select(g => new DenialProbe(g.Authority, g, certificate, tlsRoot)).ToList();
            try
            {
                var running = probes.Select(p => p.RunAsync(stop.Token)).ToList();
                await Task.WhenAll(probes.Select(p => p.Allowed.Task)).WaitAsync(stop.Token);
                var start = Stopwatch.GetTimestamp();
                probes.ForEach(p => p.Start = start);
                using var body = new StringContent("""{"action":"revoke","reason":"multi-host propagation run"}""", Encoding.UTF8, "application/json");
                using var response = await admin.PostAsync($"api/devices/{serial}/actions", body, stop.Token);
                if (!response.IsSuccessStatusCode)
                {
                    Console.Error.WriteLine($"revoke {serial}: HTTP {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(stop.Token)}");
                    return 2;
                }

                calls.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                await Task.WhenAll(running);
                all.Add(probes.Max(p => p.DeniedAfterMs));
            }
            finally
            {
                probes.ForEach(p => p.Dispose());
            }
        }

        Console.WriteLine($"RESULT {label}.revocations={all.Count}");
        Console.WriteLine(Invariant($"RESULT {label}.p50_ms={Propagation.Percentile(all, 50):0.0}"));
        Console.WriteLine(Invariant($"RESULT {label}.p99_ms={Propagation.Percentile(all, 99):0.0}"));
        Console.WriteLine(Invariant($"RESULT {label}.max_ms={all.Max():0.0}"));
        Console.WriteLine(Invariant($"RESULT {label}.admin_call_p50_ms={Propagation.Percentile(calls, 50):0.0}"));
        return 0;
    }

    private static async Task<int> DecisionsAsync(string[] args)
    {
        var label = Text(args, "--label", "decisions");
        var wanted = (await File.ReadAllLinesAsync(Text(args, "--ids", "ids.txt"))).Where(l => l.Length > 0).ToHashSet(StringComparer.Ordinal);
        var waitSeconds = Propagation.Option(args, "--wait", 60);
        var since = Text(args, "--since-ms", "0");
        var streamKey = Text(args, "--stream", RedisStreamSink.DefaultStreamKey);
        await using var redis = new RedisConnection(Text(args, "--redis", "localhost:6379"));
        var found = new HashSet<string>(StringComparer.Ordinal);
        var last = since + "-0";
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var db = await redis.DatabaseAsync();
                while (true)
                {
                    var page = await db.StreamRangeAsync(streamKey, last, "+", 1000);
                    foreach (var entry in page)
                    {
                        foreach (var json in DecisionStreamEntry.EventJson(entry))
                        {
                            if (EventId(json.Span) is { } id && wanted.Contains(id))
                            {
                                found.Add(id);
                            }
                        }
                    }

                    if (page.Length > 0)
                    {
                        last = "(" + page[^1].Id;
                    }

                    if (page.Length < 1000)
                    {
                        break;
                    }
                }
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                Console.Error.WriteLine($"stream read: {ex.Message} (retrying)");
            }

            // Decisions a node spooled while Redis was away are replayed in order once it is back: give them time.
            if (found.Count == wanted.Count || deadline.Elapsed.TotalSeconds > waitSeconds)
            {
                break;
            }

            await Task.Delay(200);
        }

        Console.WriteLine($"RESULT {label}.decisions_expected={wanted.Count}");
        Console.WriteLine($"RESULT {label}.decisions_found={found.Count}");
        Console.WriteLine($"RESULT {label}.decisions_lost={wanted.Count - found.Count}");
        if (found.Count < wanted.Count)
        {
            // When the missing ones were decided (a decision id starts with its time in ms, ULID-style): which moment lost them.
            var times = wanted.Except(found).Select(IdTimeMs).Order().ToList();
            Console.WriteLine($"RESULT {label}.missing_decided_from_ms={times[0]}");
            Console.WriteLine($"RESULT {label}.missing_decided_to_ms={times[^1]}");
        }

        return 0;
    }

    /// <summary>Answers per second and gateway, by kind, for the figures and the timeline.</summary>
    private sealed class Counts(int gateways, int seconds)
    {
        public long Sent;
        public long KnownDenied;
        public long UnknownAllowed;
        public long UnknownDenied;
        private readonly long[,] _allowed = new long[seconds, gateways];
        private readonly long[] _denied = new long[seconds];
        private readonly long[] _errors = new long[seconds];
        private readonly long[] _errorsPerGateway = new long[gateways];
        private readonly ConcurrentDictionary<string, long> _reasons = new(StringComparer.Ordinal);

        public void Answer(int second, int gateway, bool known, bool allowed, string? reason)
        {
            second = Math.Min(second, _denied.Length - 1);
            if (allowed)
            {
                Interlocked.Increment(ref _allowed[second, gateway]);
                if (!known)
                {
                    Interlocked.Increment(ref UnknownAllowed);
                }

                return;
            }

            Interlocked.Increment(ref _denied[second]);
            Interlocked.Increment(ref known ? ref KnownDenied : ref UnknownDenied);
            _reasons.AddOrUpdate(reason ?? "(no reason)", 1, (_, n) => n + 1);
        }

        public void Error(int second, int gateway)
        {
            Interlocked.Increment(ref _errors[Math.Min(second, _errors.Length - 1)]);
            Interlocked.Increment(ref _errorsPerGateway[gateway]);
        }

        public void Print(string label, double elapsed, int seconds, Uri[] gateways)
        {
            var span = Math.Min(seconds, _denied.Length);
            long Allowed(int s) => Enumerable.Range(0, gateways.Length).Sum(g => _allowed[s, g]);
            var allowed = Enumerable.Range(0, span).Sum(Allowed);
            var denied = _denied.Sum();
            var errors = _errors.Sum();
            // The full seconds between the first and the last (ramp-up and the cut at the end left out).
            var inner = Enumerable.Range(1, Math.Max(1, span - 2)).Where(s => s < span).ToList();
            Console.WriteLine("second  " + string.Join("  ", gateways.Select(g => g.Authority)) + "  denied  errors");
            for (var s = 0; s < span; s++)
            {
                Console.WriteLine($"{s,6}  " + string.Join("  ", Enumerable.Range(0, gateways.Length).Select(g => _allowed[s, g].ToString(CultureInfo.InvariantCulture).PadLeft(gateways[g].Authority.Length))) + $"  {_denied[s],6}  {_errors[s],6}");
            }

            Console.WriteLine($"RESULT {label}.sent={Sent}");
            Console.WriteLine($"RESULT {label}.answered={allowed + denied}");
            Console.WriteLine($"RESULT {label}.allowed={allowed}");
            Console.WriteLine($"RESULT {label}.denied={denied}");
            Console.WriteLine($"RESULT {label}.errors={errors}");
            Console.WriteLine(Invariant($"RESULT {label}.requests_per_s={(allowed + denied) / elapsed:0}"));
            Console.WriteLine($"RESULT {label}.known_denied={KnownDenied}");
            Console.WriteLine($"RESULT {label}.unknown_allowed={UnknownAllowed}");
            Console.WriteLine($"RESULT {label}.unknown_denied={UnknownDenied}");
            Console.WriteLine($"RESULT {label}.min_allowed_per_s={(inner.Count == 0 ? 0 : inner.Min(Allowed))}");
            Console.WriteLine($"RESULT {label}.per_gateway=" + string.Join(",", Enumerable.Range(0, gateways.Length).Select(g => $"{gateways[g].Host}:{Enumerable.Range(0, span).Sum(s => _allowed[s, g])}")));
            Console.WriteLine($"RESULT {label}.errors_per_gateway=" + string.Join(",", Enumerable.Range(0, gateways.Length).Select(g => $"{gateways[g].Host}:{_errorsPerGateway[g]}")));
            Console.WriteLine($"RESULT {label}.deny_reasons=" + string.Join(",", _reasons.OrderByDescending(r => r.Value).Select(r => $"{r.Key}:{r.Value}")));
        }
    }

    private static HttpClient ConsoleClient(Uri console, string token, X509Certificate2 tlsRoot)
    {
        var client = new HttpClient(new SocketsHttpHandler { SslOptions = { CertificateChainPolicy = DeviceClients.TrustOnly(tlsRoot) } }) { BaseAddress = console, Timeout = TimeSpan.FromSeconds(10) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>Units that were never registered: real certificates of the operator CA (a forger holding the CA key would do no better).</summary>
    private static List<X509Certificate2> ForgeUnknown(DevPkiLayout layout, int count)
    {
        using var ca = new CertificateAuthority(PemFiles.ReadCertificateWithKey(layout.OperatorCaCertificate, layout.OperatorCaKey));
        return Enumerable.Range(1, count)
            .Select(i => ca.IssueWithNewKey(new X500DistinguishedName($"CN=FC-UNREGISTERED-{i:D3}"), CertificateUsage.ClientAuth, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1)))
            .ToList();
    }

    private static string[] Serials(string[] args)
    {
        var prefix = Text(args, "--prefix", "FC-M");
        var first = Propagation.Option(args, "--first", 1);
        var count = Propagation.Option(args, "--devices", 10);
        return Enumerable.Range(first, count).Select(i => string.Create(CultureInfo.InvariantCulture, $"{prefix}{i:D4}")).ToArray();
    }

    // The upstream echoes the decision id the gateway forwarded; a denial's problem+json carries its own.
    private static string? DecisionId(string body) => Field(body, "\"decisionId\":\"");

    private static string? ReasonCode(string body) => Field(body, "\"reasonCode\":\"");

    private static string? Field(string body, string marker)
    {
        var at = body.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var start = at + marker.Length;
        var end = body.IndexOf('"', start);
        return end > start ? body[start..end] : null;
    }

    private static string? EventId(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1 && reader.ValueTextEquals("id"u8))
            {
                reader.Read();
                return reader.GetString();
            }
        }

        return null;
    }

    private static long IdTimeMs(string id)
    {
        const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        return id[..10].Aggregate(0L, (value, c) => (value << 5) | (long)Alphabet.IndexOf(c, StringComparison.Ordinal));
    }

    private static async Task Delay(int milliseconds, CancellationToken stop)
    {
        try
        {
            await Task.Delay(milliseconds, stop);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static string Text(string[] args, string name, string fallback)
    {
        var at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
    }

    private static string Invariant(FormattableString value) => value.ToString(CultureInfo.InvariantCulture);
}
