using System.Text.Json;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.AllowList.Redis;
using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Monitoring.Pipeline;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace KtZeroTrust.Server.Health;

/// <summary>
/// <c>/healthz</c>: the process answers (liveness, no dependency looked at). <c>/readyz</c>: the node can make correct
/// decisions now: the registry answers, the allow list is loaded, the change feed is connected (or the cache still
/// within MaxStaleness: degraded), no decision sink is losing decisions. Both answer JSON with each check's status;
/// unhealthy is 503, degraded 200 (the node serves, from a cache whose trust is running out).
/// </summary>
internal static class ReadinessChecks
{
    private const string Ready = "ready";

    public static void AddReadinessChecks(this IServiceCollection services, bool gateway)
    {
        var checks = services.AddHealthChecks()
            .AddTypeActivatedCheck<RegistryCheck>("registry", failureStatus: null, tags: [Ready], args: gateway)
            .AddCheck<DecisionSinksCheck>("decision-sinks", tags: [Ready]);
        if (gateway)
        {
            checks.AddCheck<AllowListCheck>("allow-list", tags: [Ready]);
        }

        services.AddSingleton<DecisionSinksCheck>(); // one instance: it remembers the loss count of the previous check
    }

    public static void MapReadinessChecks(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteAsync })
            .RequireListener(ListenerKind.Enrollment, ListenerKind.User, ListenerKind.Console);
        endpoints.MapHealthChecks("/readyz", new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(Ready),
            ResponseWriter = WriteAsync,
            ResultStatusCodes = { [HealthStatus.Healthy] = 200, [HealthStatus.Degraded] = 200, [HealthStatus.Unhealthy] = 503 },
        }).RequireListener(ListenerKind.Enrollment, ListenerKind.User, ListenerKind.Console);
    }

    private static async Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(context.Response.Body);
        json.WriteStartObject();
        json.WriteString("status", Name(report.Status));
        json.WriteStartObject("checks");
        foreach (var (name, entry) in report.Entries)
        {
            json.WriteStartObject(name);
            json.WriteString("status", Name(entry.Status));
            if (entry.Description is { } description)
            {
                json.WriteString("description", description);
            }

            json.WriteNumber("durationMs", Math.Round(entry.Duration.TotalMilliseconds, 1));
            json.WriteEndObject();
        }

        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static string Name(HealthStatus status) => status switch
    {
        HealthStatus.Healthy => "healthy",
        HealthStatus.Degraded => "degraded",
        _ => "unhealthy",
    };

    /// <summary>
    /// The registry answers a read (its change counter) within a few seconds. A gateway node whose allow list is shared
    /// through Redis keeps deciding without it (known devices from the allow list, misses fail closed), so there its
    /// loss is degraded, not unhealthy: a database outage must not take every gateway out of its load balancer.
    /// </summary>
    private sealed class RegistryCheck(IDeviceRegistry registry, bool gateway, GatewayRedis? redis = null) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(3));
                var version = await registry.GetVersionAsync(timeout.Token);
                return HealthCheckResult.Healthy($"version {version}");
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                return gateway && redis is not null
                    ? HealthCheckResult.Degraded($"the registry does not answer ({ex.Message}): devices are served from the shared allow list")
                    : HealthCheckResult.Unhealthy($"the registry does not answer: {ex.Message}");
            }
        }
    }

    /// <summary>Embedded: the registry has been read into the allow list. Redis: the change feed is live, or the cache is still trusted.</summary>
    private sealed class AllowListCheck(AllowListCache cache, TimeProvider timeProvider, GatewayRedis? redis = null, RegistryAllowListFeed? feed = null) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            if (redis is null)
            {
                return Task.FromResult(feed is { Loaded: true }
                    ? HealthCheckResult.Healthy($"{cache.Count} certificates, registry version {cache.Version}")
                    : HealthCheckResult.Unhealthy("the allow list has not been loaded from the registry yet"));
            }

            if (redis.FeedConnected)
            {
                return Task.FromResult(HealthCheckResult.Healthy($"change feed live; {cache.Count} certificates cached"));
            }

            return Task.FromResult(cache.IsStale(timeProvider.GetUtcNow().UtcTicks)
                ? HealthCheckResult.Unhealthy("change feed lost beyond MaxStaleness: every device is denied")
                : HealthCheckResult.Degraded("change feed lost: cached entries are served until MaxStaleness, unknown devices are denied"));
        }
    }

    /// <summary>No decision lost since the previous check (dropped with the buffer full, or a spool unwritable); a sink behind is degraded.</summary>
    internal sealed class DecisionSinksCheck(DecisionPipeline pipeline) : IHealthCheck
    {
        private long _lostSeen = -1;

        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var sinks = pipeline.Sinks;
            var lost = pipeline.Dropped + sinks.Sum(s => s.Lost);
            var previous = Interlocked.Exchange(ref _lostSeen, lost);
            if (previous >= 0 ? lost > previous : lost > 0)
            {
                return Task.FromResult(HealthCheckResult.Unhealthy($"{lost} decisions lost so far ({pipeline.Dropped} with the buffer full)"));
            }

            var behind = sinks.Where(s => s.Behind).Select(s => s.FailingSince is { } since ? $"{s.Name} failing since {since:u}" : $"{s.Name} catching up from its spool").ToList();
            return Task.FromResult(behind.Count == 0
                ? HealthCheckResult.Healthy($"{sinks.Count} sinks writing")
                : HealthCheckResult.Degraded(string.Join("; ", behind) + " (nothing lost: spooled)"));
        }
    }
}
