namespace KtZeroTrust.Hosting.Metrics;

/// <summary>One number a role reports about itself: a Prometheus-style name (no unit suffix added), help, counter or gauge, and how to read it now.</summary>
public sealed record NodeMetric(string Name, string Help, bool IsCounter, Func<double> Read);

/// <summary>
/// A role's own metrics beside the decision pipeline's, on <c>/metrics</c> and over OTLP: declared once, each read at
/// a scrape or collection, never on the request path. Registered as <c>INodeMetricSource</c>, each role its own.
/// </summary>
public interface INodeMetricSource
{
    IReadOnlyList<NodeMetric> Metrics { get; }
}
