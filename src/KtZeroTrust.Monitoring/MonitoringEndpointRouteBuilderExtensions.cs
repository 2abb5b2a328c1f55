using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Monitoring.Metrics;
using KtZeroTrust.Monitoring.Pipeline;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Microsoft.AspNetCore.Builder;

public static class MonitoringEndpointRouteBuilderExtensions
{
    /// <summary>
    /// The pipeline's counters (and each role's <see cref="KtZeroTrust.Hosting.Metrics.INodeMetricSource"/>) in Prometheus text format at <c>/metrics</c>, on the console listener only, for the
    /// metrics reader's bearer token (<see cref="MetricsCredential"/>); anyone else gets 401.
    /// </summary>
    public static IEndpointConventionBuilder MapDecisionMetrics(this IEndpointRouteBuilder endpoints)
        => endpoints.MapGet("/metrics", async (HttpContext context, DecisionPipeline pipeline, MetricsCredential credential, IEnumerable<KtZeroTrust.Hosting.Metrics.INodeMetricSource> sources) =>
        {
            if (!await credential.AllowsAsync(context.Request))
            {
                context.Response.Headers.WWWAuthenticate = "Bearer realm=\"ktzt-metrics\"";
                return Results.Problem(detail: "The metrics reader's bearer token is required (ZeroTrust:Metrics:TokenFile).", statusCode: StatusCodes.Status401Unauthorized);
            }

            return Results.Text(PipelineMetrics.Render(pipeline, sources), PipelineMetrics.ContentType);
        }).RequireListener(ListenerKind.Console);
}
