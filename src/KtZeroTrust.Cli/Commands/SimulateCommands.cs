using System.CommandLine;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using KtZeroTrust.Cli.Simulation;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Attestation;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Pki.Manifests;

namespace KtZeroTrust.Cli.Commands;

/// <summary>
/// <c>ztctl simulate</c>: a femtocell fleet against a running server. Honest units attest, enroll over EST and use the
/// gateway (the load generator: it reports attested enrollments per second, per protocol with <c>--protocol both</c>:
/// EST and CMP units interleaved in the same run); <c>--rogue</c> scenarios play each attack
/// and check it is refused with its own reason code.
/// </summary>
internal static class SimulateCommands
{
    public static readonly string[] Scenarios = ["shared-key", "decommissioned", "moved", "bad-firmware", "replayed-nonce", "unknown-serial", "cloned-certificate"];

    public static Command Create()
    {
        var enrollUrl = new Option<string>("--enroll-url") { Description = "Enrollment listener", DefaultValueFactory = _ => "https://localhost:8444" };
        var gatewayUrl = new Option<string>("--gateway-url") { Description = "Device gateway listener", DefaultValueFactory = _ => "https://localhost:8443" };
        var units = new Option<int>("--units") { Description = "Honest units to simulate (synthetic SIM-nnnn units, minted and imported on first use)", DefaultValueFactory = _ => 20 };
        var rounds = new Option<int>("--rounds") { Description = "Enrollments per unit", DefaultValueFactory = _ => 1 };
        var concurrency = new Option<int>("--concurrency") { Description = "Units working at once", DefaultValueFactory = _ => 16 };
        var noGateway = new Option<bool>("--no-gateway") { Description = "Measure enrollment alone: skip each unit's request through the device gateway with its new certificate" };
        var protocol = new Option<string>("--protocol") { Description = "How honest units enroll: est, cmp (ir + certConf), or both (every other unit)", DefaultValueFactory = _ => "est" };
        protocol.AcceptOnlyFromAmong("est", "cmp", "both");
        var renew = new Option<bool>("--renew") { Description = "After enrolling, each unit renews at the point its certificate's renewal hint names (50-80% of its lifetime, jittered), then uses the gateway with the new certificate" };
        var timeScale = new Option<double>("--time-scale") { Description = "With --renew: how much faster than real time units wait for their renewal point (1440: a 24 h certificate's day in a minute)", DefaultValueFactory = _ => 1 };
        var rogue = new Option<string[]>("--rogue") { Description = $"Attack scenarios to play: {string.Join(", ", Scenarios)}, or all", AllowMultipleArgumentsPerToken = true };
        var command = new Command("simulate", "Simulate a femtocell fleet (honest and rogue units) against a running server")
        {
            enrollUrl, gatewayUrl, units, rounds, concurrency, noGateway, protocol, renew, timeScale, rogue,
        };
        command.SetAction(CliContext.Run(async (ctx, ct) =>
        {
            var layout = new DevPkiLayout(ctx.PkiDirectory);
            var reference = ReferenceValuesFile.Load(layout.ReferenceValues);
            using var tlsRoot = PemFiles.ReadCertificate(layout.TlsRootCertificate);
            using var operatorCa = PemFiles.ReadCertificate(layout.OperatorCaCertificate);
            if (!Uri.TryCreate(ctx.ParseResult.GetValue(enrollUrl), UriKind.Absolute, out var enrollUri) || !Uri.TryCreate(ctx.ParseResult.GetValue(gatewayUrl), UriKind.Absolute, out var gatewayUri))
            {
                await ctx.Error.WriteLineAsync("error: --enroll-url and --gateway-url must be absolute URLs (https://host:port).");
                return ExitCodes.Usage;
            }

            var target = new SimulationTarget(enrollUri, gatewayUri, tlsRoot, reference, operatorCa);
            var registry = await ctx.OpenRegistryAsync(ct);
            await registry.ImportReferenceValuesAsync(reference, CliContext.Actor, ct);

            var scale = ctx.ParseResult.GetValue(timeScale);
            if (!(scale is >= 1 and <= 1_000_000))
            {
                await ctx.Error.WriteLineAsync("error: --time-scale is between 1 (real time) and 1000000.");
                return ExitCodes.Usage;
            }

            var (ok, honestSummary) = await HonestAsync(ctx, target, layout, reference, registry, ctx.ParseResult.GetValue(units), ctx.ParseResult.GetValue(rounds), ctx.ParseResult.GetValue(concurrency), !ctx.ParseResult.GetValue(noGateway),
                ctx.ParseResult.GetValue(protocol) ?? "est", ctx.ParseResult.GetValue(renew) ? scale : null, ct);
            var scenarios = ctx.ParseResult.GetValue(rogue) ?? [];
            if (scenarios.Contains("all"))
            {
                scenarios = Scenarios;
            }

            foreach (var unknown in scenarios.Except(Scenarios))
            {
                await ctx.Error.WriteLineAsync($"error: unknown scenario '{unknown}' (known: {string.Join(", ", Scenarios)}).");
                return ExitCodes.Usage;
            }

            object? rogueResults = null;
            if (scenarios.Length > 0)
            {
                var (refused, results) = await RogueAsync(ctx, target, layout, reference, registry, scenarios, ct);
                ok &= refused;
                rogueResults = results;
            }

            if (ctx.AsJson)
            {
                ctx.WriteJson(new { honest = honestSummary, rogue = rogueResults });
            }

            return ok ? ExitCodes.Success : ExitCodes.Failed;
        }));
        return command;
    }

    private static async Task<(bool Ok, object? Summary)> HonestAsync(CliContext ctx, SimulationTarget target, DevPkiLayout layout, Core.Attestation.ReferenceValues reference,
        IDeviceRegistry registry, int unitCount, int rounds, int concurrency, bool useGateway, string protocol, double? renewalTimeScale, CancellationToken ct)
    {
        if (unitCount <= 0)
        {
            return (true, null);
        }

        var fleet = await SimulatedFleet.EnsureAsync(layout, reference, registry, "SIM", unitCount, ct);
        var units = fleet.Select(u => new SimulatedUnit(target, u.Serial, u.Model, u.Site, u.Factory)).ToList();
        // With both, every other unit speaks CMP: the two protocols share the server, the run and the clock.
        EnrollmentProtocol ProtocolOf(int index) => protocol switch
        {
            "cmp" => EnrollmentProtocol.Cmp,
            "both" => index % 2 == 0 ? EnrollmentProtocol.Est : EnrollmentProtocol.Cmp,
            _ => EnrollmentProtocol.Est,
        };
        var byProtocol = new long[2];
        long enrolled = 0, failed = 0, gatewayOk = 0;
        var failures = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var watch = Stopwatch.StartNew();
        using var progressStop = new CancellationTokenSource();
        var total = (long)unitCount * rounds;
        var progress = Task.Run(async () =>
        {
            using var everySecond = new PeriodicTimer(TimeSpan.FromSeconds(1));
            while (await everySecond.WaitForNextTickAsync(progressStop.Token).AsTask().ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default))
            {
                if (!ctx.AsJson)
                {
                    var done = Interlocked.Read(ref enrolled);
                    ctx.Error.WriteLine($"  {done}/{total} enrolled ({done / watch.Elapsed.TotalSeconds:0}/s), {Interlocked.Read(ref failed)} failed");
                }
            }
        }, CancellationToken.None);

        // Units in parallel, each unit's rounds one after another: a unit re-enrolling replaces the certificate (and the
        // connection) its previous round may still be using, as a real unit would never do to itself.
        await Parallel.ForEachAsync(units.Select((unit, index) => (unit, index)), new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, concurrency), CancellationToken = ct }, async (item, token) =>
        {
            for (var round = 0; round < rounds; round++)
            {
                await EnrollAndCallAsync(item.unit, ProtocolOf(item.index), token);
            }
        });

        async Task EnrollAndCallAsync(SimulatedUnit unit, EnrollmentProtocol over, CancellationToken token)
        {
            var (nonceResult, nonce) = await unit.NonceAsync(token);
            var step = nonceResult;
            if (nonce is not null)
            {
                var (attest, _) = await unit.AttestAsync(unit.HonestClaims(nonce), token);
                step = !attest.Ok ? attest : over == EnrollmentProtocol.Cmp ? await unit.EnrollCmpAsync(token) : await unit.EnrollAsync(nonce, token);
            }

            if (!step.Ok)
            {
                Interlocked.Increment(ref failed);
                failures.AddOrUpdate($"{over.ToString().ToUpperInvariant()} {(int)step.Status} {step.Reason}", 1, (_, n) => n + 1);
                return;
            }

            Interlocked.Increment(ref enrolled);
            Interlocked.Increment(ref byProtocol[(int)over]);
            if (useGateway && (await unit.CallGatewayAsync(token)).Ok)
            {
                Interlocked.Increment(ref gatewayOk);
            }
        }

        var elapsed = watch.Elapsed;
        await progressStop.CancelAsync();
        await progress;
        var renewals = renewalTimeScale is { } scale ? await RenewAllAsync(units.Select((unit, index) => (unit, ProtocolOf(index))), concurrency, scale, useGateway, ct) : null;
        units.ForEach(u => u.Dispose());
        fleet.ForEach(u => u.Factory.Dispose());

        var rate = enrolled / elapsed.TotalSeconds;
        var (est, cmp) = (byProtocol[(int)EnrollmentProtocol.Est], byProtocol[(int)EnrollmentProtocol.Cmp]);
        var summary = new
        {
            units = unitCount, rounds, concurrency, protocol, enrolled, failed, gatewayOk, seconds = elapsed.TotalSeconds, enrollmentsPerSecond = rate,
            est = new { enrolled = est, perSecond = est / elapsed.TotalSeconds }, cmp = new { enrolled = cmp, perSecond = cmp / elapsed.TotalSeconds }, failures, renewals,
        };
        if (!ctx.AsJson)
        {
            ctx.Out.WriteLine($"Honest fleet: {enrolled} attested enrollments in {elapsed.TotalSeconds:0.0} s = {rate:0} per second ({unitCount} units x {rounds} rounds, concurrency {concurrency}); gateway allowed {gatewayOk}; {failed} failed.");
            ctx.Out.WriteLine($"  by protocol: EST {est} ({est / elapsed.TotalSeconds:0.0}/s), CMP {cmp} ({cmp / elapsed.TotalSeconds:0.0}/s)");
            foreach (var (what, n) in failures)
            {
                ctx.Out.WriteLine($"  failed: {what} x{n}");
            }

            if (renewals is not null)
            {
                ctx.Out.WriteLine($"Renewals: {renewals.Renewed} renewed, {renewals.Failed} failed, gateway allowed {renewals.GatewayOk}; at {renewals.EarliestFraction:P0} to {renewals.LatestFraction:P0} of the lifetime; by tenth of the lifetime: {string.Join(' ', renewals.ByTenth)}");
                foreach (var (what, n) in renewals.Failures)
                {
                    ctx.Out.WriteLine($"  renewal failed: {what} x{n}");
                }
            }
        }

        var renewedOk = renewals is null || (renewals.Failed == 0 && (!useGateway || renewals.GatewayOk == renewals.Renewed));
        return (failed == 0 && (!useGateway || gatewayOk == enrolled) && renewedOk, summary);
    }

    /// <summary>What the renewal phase came to: counts, and where in their lifetimes the units renewed.</summary>
    private sealed record RenewalSummary(int Renewed, int Failed, int GatewayOk, double EarliestFraction, double LatestFraction, int[] ByTenth, IReadOnlyDictionary<string, int> Failures);

    /// <summary>
    /// Each enrolled unit waits for its renewal point (the certificate's hint, or the same rule without one), time
    /// compressed by <paramref name="timeScale"/>, then renews; at most <paramref name="concurrency"/> renew at once.
    /// </summary>
    private static async Task<RenewalSummary> RenewAllAsync(IEnumerable<(SimulatedUnit Unit, EnrollmentProtocol Over)> units, int concurrency, double timeScale, bool useGateway, CancellationToken ct)
    {
        using var gate = new SemaphoreSlim(Math.Max(1, concurrency));
        var fractions = new System.Collections.Concurrent.ConcurrentBag<double>();
        var failures = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        int renewed = 0, failed = 0, gatewayOk = 0;
        await Task.WhenAll(units.Where(u => u.Unit.Operational is not null).Select(async u =>
        {
            var (received, notAfter) = (u.Unit.ReceivedAt, u.Unit.Operational!.NotAfter.ToUniversalTime());
            var renewAt = RenewalHint.RenewAt(u.Unit.Operational, received, Random.Shared);
            fractions.Add((renewAt - received) / (notAfter - received));
            var wait = (renewAt - DateTimeOffset.UtcNow) / timeScale;
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, ct);
            }

            await gate.WaitAsync(ct);
            try
            {
                var step = await u.Unit.RenewAsync(u.Over, ct);
                if (!step.Ok)
                {
                    Interlocked.Increment(ref failed);
                    failures.AddOrUpdate($"{u.Over.ToString().ToUpperInvariant()} {(int)step.Status} {step.Reason}", 1, (_, n) => n + 1);
                    return;
                }

                Interlocked.Increment(ref renewed);
                if (useGateway && (await u.Unit.CallGatewayAsync(ct)).Ok)
                {
                    Interlocked.Increment(ref gatewayOk);
                }
            }
            finally
            {
                gate.Release();
            }
        }));

        var byTenth = new int[10];
        foreach (var f in fractions)
        {
            byTenth[Math.Clamp((int)(f * 10), 0, 9)]++;
        }

        return new RenewalSummary(renewed, failed, gatewayOk, fractions.IsEmpty ? 0 : fractions.Min(), fractions.IsEmpty ? 0 : fractions.Max(), byTenth, failures);
    }

    private static async Task<(bool Refused, object Results)> RogueAsync(CliContext ctx, SimulationTarget target, DevPkiLayout layout, Core.Attestation.ReferenceValues reference,
        IDeviceRegistry registry, string[] scenarios, CancellationToken ct)
    {
        // Fresh units per run (their serials carry the time), so terminal states left by earlier runs do not matter.
        var fleet = await SimulatedFleet.EnsureAsync(layout, reference, registry, $"ROGUE{DateTime.UtcNow:HHmmss}", 8, ct);
        var pool = new Queue<SimulatedUnit>(fleet.Select(u => new SimulatedUnit(target, u.Serial, u.Model, u.Site, u.Factory)));
        var results = new List<(string Scenario, string Expected, string Got, bool Refused)>();
        foreach (var scenario in scenarios)
        {
            var (expected, got) = scenario switch
            {
                "shared-key" => await SharedKeyAsync(pool.Dequeue(), pool.Dequeue(), ct),
                "decommissioned" => await DecommissionedAsync(pool.Dequeue(), registry, ct),
                "moved" => await EvidenceAsync(pool.Dequeue(), "location_outside_site", c => c with { Location = new Pki.Attestation.LocationClaim(-33.86, 151.21) }, ct),
                "bad-firmware" => await EvidenceAsync(pool.Dequeue(), "firmware_unknown", c => c with { Firmware = c.Firmware with { Sha256 = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)) } }, ct),
                "replayed-nonce" => await ReplayAsync(pool.Dequeue(), ct),
                "unknown-serial" => await UnknownSerialAsync(target, layout, ct),
                "cloned-certificate" => await CloneAsync(pool.Dequeue(), ct),
                _ => ("?", "?"),
            };
            results.Add((scenario, expected, got, expected == got));
        }

        foreach (var unit in pool)
        {
            unit.Dispose();
        }

        if (!ctx.AsJson)
        {
            ctx.Out.WriteLine("Rogue scenarios:");
            foreach (var (scenario, expected, got, refused) in results)
            {
                ctx.Out.WriteLine($"  {(refused ? "refused " : "NOT REFUSED AS EXPECTED")} {scenario,-20} expected {expected,-24} got {got}");
            }
        }

        return (results.All(r => r.Refused), results.Select(r => new { scenario = r.Scenario, expected = r.Expected, got = r.Got, refused = r.Refused }).ToList());
    }

    private static async Task<(string, string)> SharedKeyAsync(SimulatedUnit first, SimulatedUnit second, CancellationToken ct)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var enrolled = await EnrollAsync(first, ct, key);
        if (!enrolled.Ok)
        {
            return ("key_shared", $"setup failed: {enrolled.Reason}");
        }

        var refused = await EnrollAsync(second, ct, key); // the copied fleet-wide credential
        return ("key_shared", refused.Reason ?? refused.Status.ToString());
    }

    private static async Task<(string, string)> DecommissionedAsync(SimulatedUnit unit, IDeviceRegistry registry, CancellationToken ct)
    {
        var enrolled = await EnrollAsync(unit, ct);
        if (!enrolled.Ok)
        {
            return ("device_decommissioned", $"setup failed: {enrolled.Reason}");
        }

        await registry.TransitionAsync(unit.Serial, DeviceLifecycleState.Decommissioned, "ztctl:simulate", "simulated: unit retired, then reconnects", ct);
        // The retired unit comes back with its still-valid certificate; the gateway must refuse (then re-enrollment too).
        StepResult call = default!;
        for (var i = 0; i < 50; i++)
        {
            call = await unit.CallGatewayAsync(ct);
            if (!call.Ok && call.Reason is not null && !call.Reason.StartsWith("connection_refused", StringComparison.Ordinal))
            {
                break;
            }

            await Task.Delay(100, ct); // embedded gateways see registry writes of other processes at their next poll
        }

        var (nonceResult, _) = await unit.NonceAsync(ct);
        var reenroll = nonceResult.Ok ? "nonce issued" : nonceResult.Reason ?? nonceResult.Status.ToString();
        return ("device_decommissioned", call.Reason == "device_decommissioned" && reenroll == "device_not_enrollable" ? "device_decommissioned" : $"{call.Reason}; re-enrollment: {reenroll}");
    }

    private static async Task<(string, string)> EvidenceAsync(SimulatedUnit unit, string expected, Func<EvidenceClaims, EvidenceClaims> tweak, CancellationToken ct)
    {
        var (n, nonce) = await unit.NonceAsync(ct);
        if (nonce is null)
        {
            return (expected, $"no nonce: {n.Reason}");
        }

        var (result, _) = await unit.AttestAsync(tweak(unit.HonestClaims(nonce)), ct);
        return (expected, result.Reason ?? result.Status.ToString());
    }

    private static async Task<(string, string)> ReplayAsync(SimulatedUnit unit, CancellationToken ct)
    {
        var (_, nonce) = await unit.NonceAsync(ct);
        var claims = unit.HonestClaims(nonce ?? "");
        var (first, _) = await unit.AttestAsync(claims, ct);
        if (!first.Ok)
        {
            return ("nonce_invalid", $"setup failed: {first.Reason}");
        }

        var (replayed, _) = await unit.AttestAsync(claims, ct); // the same evidence, intercepted and sent again
        return ("nonce_invalid", replayed.Reason ?? replayed.Status.ToString());
    }

    private static async Task<(string, string)> UnknownSerialAsync(SimulationTarget target, DevPkiLayout layout, CancellationToken ct)
    {
        using var stranger = SimulatedFleet.Stranger(layout, $"UNREG-{Random.Shared.Next(100_000, 999_999)}");
        using var unit = new SimulatedUnit(target, DeviceCertificates.SerialOf(stranger)!, "unknown", null, stranger);
        var (result, _) = await unit.NonceAsync(ct);
        return ("device_unknown", result.Reason ?? result.Status.ToString());
    }

    private static async Task<(string, string)> CloneAsync(SimulatedUnit unit, CancellationToken ct)
    {
        var enrolled = await EnrollAsync(unit, ct);
        if (!enrolled.Ok)
        {
            return ("clone_suspected", $"setup failed: {enrolled.Reason}");
        }

        // The same operational certificate used at once from a second address (127.0.0.2 stands for another network).
        using var clone = new SimulatedUnit(unit.GetTarget(), unit.Serial, unit.Model, unit.Site, unit.Factory, IPAddress.Parse("127.0.0.2"));
        StepResult last = default!;
        for (var i = 0; i < 10; i++)
        {
            await unit.CallGatewayAsync(ct);
            last = await clone.CallGatewayAsync(ct, unit.Operational);
            if (!last.Ok)
            {
                break;
            }
        }

        return ("clone_suspected", last.Ok ? "allowed" : last.Reason ?? last.Status.ToString());
    }

    private static async Task<StepResult> EnrollAsync(SimulatedUnit unit, CancellationToken ct, ECDsa? key = null)
    {
        var (n, nonce) = await unit.NonceAsync(ct);
        if (nonce is null)
        {
            return n;
        }

        var (attest, _) = await unit.AttestAsync(unit.HonestClaims(nonce), ct);
        return attest.Ok ? await unit.EnrollAsync(nonce, ct, key) : attest;
    }
}
