using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Monitoring.Pipeline;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Microsoft.AspNetCore.Builder;

public static class MonitoringEndpointRouteBuilderExtensions
{
    /// <summary>The pipeline's counters in Prometheus text format at <c>/metrics</c>, on the console listener only.</summary>
    public static IEndpointConventionBuilder MapDecisionMetrics(this IEndpointRouteBuilder endpoints)
        => endpoints.MapGet("/metrics", (DecisionPipeline pipeline) => Results.Text(PipelineMetrics.Render(pipeline), PipelineMetrics.ContentType))
            .RequireListener(ListenerKind.Console);
}
