using System.Globalization;
using System.Text;

namespace KtZeroTrust.Monitoring.Pipeline;

/// <summary>
/// The pipeline's health in the Prometheus text format (0.0.4): what was posted and lost, and per sink what was
/// written, spooled and lost, the spool's size and whether the sink is behind. Scrapers alert on loss and spool growth.
/// </summary>
public static class PipelineMetrics
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static string Render(DecisionPipeline pipeline, IEnumerable<Hosting.Metrics.INodeMetricSource>? sources = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        var text = new StringBuilder();
        void Metric(string name, string type, string help, IEnumerable<(string Labels, double Value)> samples)
        {
            text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} {type}\n");
            foreach (var (labels, value) in samples)
            {
                text.Append(CultureInfo.InvariantCulture, $"{name}{labels} {value}\n");
            }
        }

        var counters = pipeline.Counters;
        Metric("ktzt_decisions_total", "counter", "Decisions by outcome and reason code.",
            counters.ByOutcomeAndReason().Select(c => ($"{{outcome=\"{(c.Outcome == Core.Decisions.DecisionOutcome.Allow ? "allow" : "deny")}\",reason=\"{Core.Decisions.ReasonCodes.Name(c.Reason)}\"}}", (double)c.Count)));

        // Histogram: cumulative buckets in seconds, as Prometheus expects.
        var buckets = counters.LatencyBuckets();
        text.Append("# HELP ktzt_decision_latency_seconds Time spent deciding an access request.\n# TYPE ktzt_decision_latency_seconds histogram\n");
        long cumulative = 0;
        for (var i = 0; i < buckets.Length; i++)
        {
            cumulative += buckets[i];
            var le = i < DecisionCounters.LatencyBoundsMicroseconds.Length ? (DecisionCounters.LatencyBoundsMicroseconds[i] / 1e6).ToString("R", CultureInfo.InvariantCulture) : "+Inf";
            text.Append(CultureInfo.InvariantCulture, $"ktzt_decision_latency_seconds_bucket{{le=\"{le}\"}} {cumulative}\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"ktzt_decision_latency_seconds_sum {counters.LatencySumMicroseconds / 1e6}\nktzt_decision_latency_seconds_count {cumulative}\n");
        Metric("ktzt_pipeline_lag_seconds", "gauge", "Age of the oldest decision the slowest sink has not yet written.", [("", pipeline.LagSeconds)]);

        var sinks = pipeline.Sinks;
        Metric("ktzt_decisions_posted_total", "counter", "Decisions posted to the pipeline.", [("", pipeline.Posted)]);
        Metric("ktzt_decisions_dropped_total", "counter", "Decisions lost because the in-memory buffer was full.", [("", pipeline.Dropped)]);
        Metric("ktzt_sink_written_total", "counter", "Decisions accepted by a sink.", sinks.Select(s => (Label(s.Name), (double)s.Written)));
        Metric("ktzt_sink_spooled_total", "counter", "Decisions a sink could not take at once, written to its spool.", sinks.Select(s => (Label(s.Name), (double)s.Spooled)));
        Metric("ktzt_sink_lost_total", "counter", "Decisions lost because the spool could not be written (disk full).", sinks.Select(s => (Label(s.Name), (double)s.Lost)));
        Metric("ktzt_sink_spool_bytes", "gauge", "Bytes waiting in a sink's spool.", sinks.Select(s => (Label(s.Name), (double)s.SpoolBytes)));
        Metric("ktzt_sink_behind", "gauge", "1 while a sink is failing or catching up from its spool.", sinks.Select(s => (Label(s.Name), s.Behind ? 1.0 : 0.0)));
        Metric("ktzt_sink_failing", "gauge", "1 while a sink's writes fail (no success since the first failure).", sinks.Select(s => (Label(s.Name), s.FailingSince is null ? 0.0 : 1.0)));
        Metric("ktzt_journal_failed_total", "counter", "Decisions the journal could not take (not crash-safe).", [("", (double)pipeline.JournalFailures)]);
        foreach (var metric in (sources ?? []).SelectMany(s => s.Metrics))
        {
            Metric(metric.Name, metric.IsCounter ? "counter" : "gauge", metric.Help, [("", metric.Read())]);
        }

        return text.ToString();
    }

    private static string Label(string sink) => $"{{sink=\"{sink.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)}\"}}";
}
