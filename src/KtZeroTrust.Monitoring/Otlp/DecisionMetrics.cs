using System.Diagnostics.Metrics;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace KtZeroTrust.Monitoring.Otlp;

/// <summary>
/// The pipeline's metrics as .NET instruments, read from the same counters as /metrics at each collection (nothing is
/// recorded on the request path): decisions by outcome and reason, posted and lost, pipeline lag, and per sink the
/// spool size. The latency histogram goes to Prometheus as buckets and here as its sum and count.
/// </summary>
public sealed class DecisionMetrics : IDisposable
{
    public const string MeterName = "KtZeroTrust.Decisions";

    private readonly Meter _meter = new(MeterName);

    public DecisionMetrics(DecisionPipeline pipeline, IEnumerable<KtZeroTrust.Hosting.Metrics.INodeMetricSource> sources)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        _meter.CreateObservableCounter("ktzt.decisions", () => pipeline.Counters.ByOutcomeAndReason().Select(c =>
            new Measurement<long>(c.Count, new KeyValuePair<string, object?>("outcome", c.Outcome == DecisionOutcome.Allow ? "allow" : "deny"), new KeyValuePair<string, object?>("reason", ReasonCodes.Name(c.Reason)))),
            unit: "{decision}", description: "Decisions by outcome and reason code.");
        _meter.CreateObservableCounter("ktzt.decision.latency.sum", () => pipeline.Counters.LatencySumMicroseconds, unit: "us", description: "Total time spent deciding access requests.");
        _meter.CreateObservableCounter("ktzt.decision.latency.count", () => pipeline.Counters.LatencyCount, unit: "{decision}", description: "Access requests timed.");
        _meter.CreateObservableCounter("ktzt.decisions.posted", () => pipeline.Posted, unit: "{decision}", description: "Decisions posted to the pipeline.");
        _meter.CreateObservableCounter("ktzt.decisions.dropped", () => pipeline.Dropped, unit: "{decision}", description: "Decisions lost with the in-memory buffer full.");
        _meter.CreateObservableGauge("ktzt.pipeline.lag", () => pipeline.LagSeconds, unit: "s", description: "Age of the oldest decision the slowest sink has not yet written.");
        _meter.CreateObservableGauge("ktzt.sink.spool.size", () => pipeline.Sinks.Select(s => new Measurement<long>(s.SpoolBytes, new KeyValuePair<string, object?>("sink", s.Name))), unit: "By", description: "Bytes waiting in a sink's spool.");
        _meter.CreateObservableCounter("ktzt.sink.lost", () => pipeline.Sinks.Select(s => new Measurement<long>(s.Lost, new KeyValuePair<string, object?>("sink", s.Name))), unit: "{decision}", description: "Decisions lost because a spool could not be written.");
        foreach (var metric in sources.SelectMany(s => s.Metrics))
        {
            if (metric.IsCounter)
            {
                _meter.CreateObservableCounter(metric.Name.Replace('_', '.'), metric.Read, description: metric.Help);
            }
            else
            {
                _meter.CreateObservableGauge(metric.Name.Replace('_', '.'), metric.Read, description: metric.Help);
            }
        }
    }

    public void Dispose() => _meter.Dispose();
}

public static class DecisionMetricsServiceCollectionExtensions
{
    /// <summary>
    /// The decision metrics exported over OTLP by the OpenTelemetry SDK that the host runs (OpenTelemetry.Extensions.Hosting:
    /// started with the host, a last export when it stops).
    /// </summary>
    public static IServiceCollection AddDecisionMetricsExport(this IServiceCollection services, OtlpOptions options, string node)
    {
        ArgumentNullException.ThrowIfNull(options);
        services.AddSingleton<DecisionMetrics>();
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.Clear().AddService("ktzerotrust", serviceInstanceId: node, autoGenerateServiceInstanceId: false))
            .WithMetrics(metrics => metrics
                .AddMeter(DecisionMetrics.MeterName)
                .AddInstrumentation(sp => sp.GetRequiredService<DecisionMetrics>())
                .AddOtlpExporter((exporter, reader) =>
                {
                    var configured = options.ExporterOptions("metrics");
                    exporter.Protocol = configured.Protocol;
                    exporter.Endpoint = configured.Endpoint;
                    exporter.TimeoutMilliseconds = configured.TimeoutMilliseconds;
                    exporter.Headers = configured.Headers;
                    reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)options.MetricsInterval.TotalMilliseconds;
                    reader.TemporalityPreference = MetricReaderTemporalityPreference.Cumulative;
                }));
        return services;
    }
}
