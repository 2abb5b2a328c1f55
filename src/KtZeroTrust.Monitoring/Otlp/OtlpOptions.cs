using OpenTelemetry.Exporter;

namespace KtZeroTrust.Monitoring.Otlp;

/// <summary>OTLP export of decisions (as log records) and pipeline metrics. Bound from <c>ZeroTrust:DecisionStream:Otlp</c>.</summary>
public sealed class OtlpOptions
{
    public const string SectionName = "ZeroTrust:DecisionStream:Otlp";

    /// <summary>The collector's base address, e.g. <c>http://127.0.0.1:4318</c> (HTTP) or <c>http://127.0.0.1:4317</c> (gRPC). Empty: no OTLP export.</summary>
    public Uri? Endpoint { get; set; }

    public OtlpExportProtocol Protocol { get; set; } = OtlpExportProtocol.HttpProtobuf;

    /// <summary>Extra request headers, <c>key=value,key2=value2</c> (an API key for a hosted collector).</summary>
    public string? Headers { get; set; }

    public bool Logs { get; set; } = true;

    public bool Metrics { get; set; } = true;

    /// <summary>How often metrics are pushed. Default 15 s.</summary>
    public TimeSpan MetricsInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long one export may take before it counts as failed (and the batch goes to the spool). Default 10 s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The OTLP exporter options for one signal (<c>logs</c> or <c>metrics</c>).</summary>
    internal OtlpExporterOptions ExporterOptions(string signal, Func<HttpClient>? httpClientFactory = null)
    {
        if (Endpoint is null)
        {
            throw new InvalidOperationException($"{SectionName}:Endpoint is required for OTLP export.");
        }

        var options = new OtlpExporterOptions
        {
            Protocol = Protocol,
            // HTTP wants the signal path; gRPC the bare address.
            Endpoint = Protocol == OtlpExportProtocol.HttpProtobuf ? new Uri(Endpoint, $"/v1/{signal}") : Endpoint,
            TimeoutMilliseconds = (int)Timeout.TotalMilliseconds,
            Headers = Headers,
        };
        if (httpClientFactory is not null)
        {
            options.HttpClientFactory = httpClientFactory;
        }

        return options;
    }
}
