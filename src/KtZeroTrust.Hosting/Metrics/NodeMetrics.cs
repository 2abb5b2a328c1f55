namespace KtZeroTrust.Hosting.Metrics;

/// <summary>One number a role reports about itself: a Prometheus-style name (no unit suffix added), help, counter or gauge.</summary>
public readonly record struct NodeMetric(string Name, string Help, bool IsCounter, double Value);

/// <summary>
/// A role's own metrics beside the decision pipeline's, on <c>/metrics</c> and over OTLP: read at each scrape or
/// collection, never on the request path. Registered as <c>INodeMetricSource</c>, each role its own.
/// </summary>
public interface INodeMetricSource
{
    IEnumerable<NodeMetric> Read();
}
