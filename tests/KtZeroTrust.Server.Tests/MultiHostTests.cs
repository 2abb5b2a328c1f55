using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// The short run of <c>deploy/multi-host/run.sh</c>: a real deployment in network namespaces (3 gateways, attestation,
/// console, Redis primary + replica + 3 Sentinels, PostgreSQL, an upstream, a fleet) and its failure scenarios. Asserts
/// what must hold whatever the machine's speed: counts and outcomes, never a duration.
/// </summary>
public sealed class MultiHostTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ShortRun_SurvivesLosingTheRedisPrimaryAGatewayThePostgresServerAndAConsoleRestart()
    {
        var script = Path.Combine(RepositoryPaths.Root, "deploy", "multi-host", "run.sh");
        // The script bounds itself (420 s for --short) and cleans up on its way out; this bound is only a backstop.
        var (exit, output) = await Tools.RunAsync("bash", [script, "--short", "--no-build"], TimeSpan.FromMinutes(9), Ct);
        Assert.True(exit == 0, $"run.sh exited {exit}:\n{output}");
        var results = output.Split('\n').Where(l => l.StartsWith("RESULT ", StringComparison.Ordinal))
            .Select(l => l["RESULT ".Length..].Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1].Trim());
        string R(string key) => results.TryGetValue(key, out var v) ? v : throw new Xunit.Sdk.XunitException($"no {key} in:\n{output}");
        long N(string key) => long.Parse(R(key), System.Globalization.CultureInfo.InvariantCulture);

        // The upstream answers the gateways only.
        Assert.Equal("403", R("upstream.direct_from_fleet"));

        // Steady state: every gateway serves, known units are allowed, unknown (forged) ones never.
        Assert.All(R("steady.per_gateway").Split(','), g => Assert.True(long.Parse(g.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture) > 0, g));
        foreach (var scenario in new[] { "steady", "redis", "gateway", "postgres" })
        {
            Assert.True(N($"{scenario}.allowed") > 0, scenario);
            Assert.Equal(0, N($"{scenario}.known_denied"));
            Assert.Equal(0, N($"{scenario}.unknown_allowed"));
            Assert.True(N($"{scenario}.unknown_denied") > 0, scenario);
        }

        Assert.True(N("propagation.revocations") > 0);

        // The Redis primary killed: promoted, followed, no request failed and no decision lost.
        Assert.True(N("redis.promoted_after_ms") > 0);
        Assert.Equal(0, N("redis.errors"));
        Assert.Equal(N("redis.answered"), N("redis.decisions_expected"));
        Assert.Equal(0, N("redis.decisions_lost"));

        // A gateway killed: only the units on it saw a failure, once each, and its peers served them after.
        var errors = R("gateway.errors_per_gateway").Split(',').ToDictionary(g => g.Split(':')[0], g => long.Parse(g.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, errors["10.78.0.11"]);
        Assert.Equal(0, errors["10.78.0.12"]);
        Assert.True(errors["10.78.0.13"] > 0);
        Assert.Equal("yes", R("gateway.restarted_ready"));

        // PostgreSQL down: the gateways stay in service (degraded), enrollment fails closed with its reason, then works.
        Assert.Equal("503", R("postgres.enrollment_during_outage_http"));
        Assert.Equal("dependency_unavailable", R("postgres.enrollment_during_outage_reason"));
        Assert.Equal("degraded", R("postgres.gateway_ready_during_outage"));
        Assert.Equal(0, N("postgres.errors"));
        Assert.Equal("ok", R("postgres.enrollment_after_outage"));

        // The console restarted: the analyst's session goes on.
        Assert.Equal("200", R("console.session_before_restart_http"));
        Assert.Equal("200", R("console.session_after_restart_http"));
    }
}
