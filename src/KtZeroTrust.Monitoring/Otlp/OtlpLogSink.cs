using System.Globalization;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.Pipeline;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Resources;

namespace KtZeroTrust.Monitoring.Otlp;

/// <summary>
/// Decisions as OTLP log records (OpenTelemetry SDK, OTLP exporter), one record per decision: the event's time as the
/// record's timestamp, its fields as attributes (<c>zt.*</c>, plus semantic-convention names where one exists), the
/// decision id as <c>zt.decision.id</c> for de-duplication. A batch counts as written only when the collector answered
/// 2xx for every export request it took; otherwise the pipeline keeps it and retries (at least once).
/// </summary>
public sealed class OtlpLogSink : IDecisionExportSink, IDisposable
{
    private readonly ILoggerFactory _factory;
    private readonly ILogger _logger;
    private readonly BatchLogRecordExportProcessor _processor;
    private readonly ResultRecorder _results = new();
    private readonly int _flushTimeoutMs;
    private DecisionEvent? _current;

    public OtlpLogSink(OtlpOptions options, string node)
    {
        ArgumentNullException.ThrowIfNull(options);
        var results = _results;
        var exporter = new OtlpLogExporter(options.ExporterOptions("logs", () => new HttpClient(new ResultRecordingHandler(results) { InnerHandler = new SocketsHttpHandler() })
        {
            Timeout = options.Timeout,
        }));
        _flushTimeoutMs = (int)options.Timeout.TotalMilliseconds * 2;

        // Queue large enough for one pipeline write (the pipeline writes at most 8,192 at once), so nothing is dropped
        // inside the SDK; exported when flushed, which each write does.
        _processor = new BatchLogRecordExportProcessor(exporter, maxQueueSize: 16_384, scheduledDelayMilliseconds: 60_000, exporterTimeoutMilliseconds: _flushTimeoutMs, maxExportBatchSize: 512);
        _factory = LoggerFactory.Create(logging => logging
            .SetMinimumLevel(LogLevel.Trace)
            .AddOpenTelemetry(otel =>
            {
                otel.SetResourceBuilder(ResourceBuilder.CreateEmpty().AddService("ktzerotrust", serviceInstanceId: node, autoGenerateServiceInstanceId: false));
                otel.IncludeFormattedMessage = true;
                otel.ParseStateValues = true;
                otel.AddProcessor(new EventTimeProcessor(this));
                otel.AddProcessor(_processor);
            }));
        _logger = _factory.CreateLogger("KtZeroTrust.Decisions");
    }

    public string Name => "otlp";

    public Task WriteBatchAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return Task.Run(() =>
        {
            var failuresBefore = _results.Failures;
            var requestsBefore = _results.Requests;
            foreach (var journaled in batch)
            {
                var e = journaled.Event;
                _current = e;
                var level = e.Kind == DecisionKind.Alert ? LogLevel.Error : e.Outcome == DecisionOutcome.Deny ? LogLevel.Warning : LogLevel.Information;
                _logger.Log(level, new EventId(1, DecisionNames.Name(e.Kind)), new DecisionState(e), null, static (state, _) => state.Message);
            }

            _current = null;
            // ForceFlush returns once the SDK has taken the last records off its queue, which can be before the
            // request carrying them has been answered: wait for every export request to finish, then judge.
            if (!_processor.ForceFlush(_flushTimeoutMs) || !_results.WaitIdle(_flushTimeoutMs))
            {
                throw new TimeoutException("The OTLP exporter did not finish within its timeout.");
            }

            if (_results.Failures != failuresBefore || (batch.Count > 0 && _results.Requests == requestsBefore))
            {
                throw new IOException($"The OTLP collector refused or did not answer ({_results.LastError}).");
            }
        }, cancellationToken);
    }

    public void Dispose()
    {
        _factory.Dispose();
        _processor.Dispose();
        _results.Dispose();
    }

    /// <summary>The record's timestamp is the decision's time, not the export's.</summary>
    private sealed class EventTimeProcessor(OtlpLogSink sink) : BaseProcessor<LogRecord>
    {
        public override void OnEnd(LogRecord data)
        {
            if (sink._current is { } e)
            {
                data.Timestamp = e.Time.UtcDateTime;
            }
        }
    }

    /// <summary>Counts export requests and their failures: the SDK's exporter reports neither back to the caller.</summary>
    private sealed class ResultRecorder : IDisposable
    {
        private readonly ManualResetEventSlim _idle = new(true);
        private readonly object _gate = new();
        private int _inFlight;
        private long _requests;
        private long _failures;

        public void Started()
        {
            lock (_gate)
            {
                _inFlight++;
                _idle.Reset();
            }
        }

        public bool WaitIdle(int timeoutMilliseconds) => _idle.Wait(timeoutMilliseconds);

        public void Dispose() => _idle.Dispose();

        public long Requests => Interlocked.Read(ref _requests);

        public long Failures => Interlocked.Read(ref _failures);

        public string? LastError { get; private set; }

        public void Record(string? error)
        {
            Interlocked.Increment(ref _requests);
            if (error is not null)
            {
                LastError = error;
                Interlocked.Increment(ref _failures);
            }

            lock (_gate)
            {
                if (--_inFlight == 0)
                {
                    _idle.Set();
                }
            }
        }
    }

    private sealed class ResultRecordingHandler(ResultRecorder results) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            results.Started();
            try
            {
                var response = await base.SendAsync(request, cancellationToken);
                results.Record(response.IsSuccessStatusCode ? null : $"HTTP {(int)response.StatusCode}");
                return response;
            }
            catch (Exception ex)
            {
                results.Record($"{ex.GetType().Name}: {ex.Message}");
                throw;
            }
        }

        protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            results.Started();
            try
            {
                var response = base.Send(request, cancellationToken);
                results.Record(response.IsSuccessStatusCode ? null : $"HTTP {(int)response.StatusCode}");
                return response;
            }
            catch (Exception ex)
            {
                results.Record($"{ex.GetType().Name}: {ex.Message}");
                throw;
            }
        }
    }

    /// <summary>The attributes of one record; names follow OpenTelemetry semantic conventions where one exists.</summary>
    private sealed class DecisionState(DecisionEvent e) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        private readonly List<KeyValuePair<string, object?>> _items = Build(e);

        public string Message => string.Create(CultureInfo.InvariantCulture,
            $"{(e.Outcome == DecisionOutcome.Allow ? "allow" : "deny")} {ReasonCodes.Name(e.Reason)} {DecisionNames.Name(e.Kind)} {e.Subject ?? "-"} {e.Method} {e.Path ?? e.Route}");

        public int Count => _items.Count;

        public KeyValuePair<string, object?> this[int index] => _items[index];

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator() => _items.GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        private static List<KeyValuePair<string, object?>> Build(DecisionEvent e)
        {
            var items = new List<KeyValuePair<string, object?>>(16)
            {
                new("zt.decision.id", e.Id),
                new("zt.kind", DecisionNames.Name(e.Kind)),
                new("zt.outcome", e.Outcome == DecisionOutcome.Allow ? "allow" : "deny"),
                new("zt.reason", ReasonCodes.Name(e.Reason)),
                new("zt.listener", DecisionNames.Name(e.Listener)),
                new("zt.latency_us", Math.Round(e.LatencyMicroseconds, 1)),
            };
            void Add(string key, string? value)
            {
                if (value is not null)
                {
                    items.Add(new(key, value));
                }
            }

            Add("zt.subject", e.Subject);
            Add("client.address", e.SourceAddress);
            if (e.SourcePort != 0)
            {
                items.Add(new("client.port", e.SourcePort));
            }

            Add("http.request.method", e.Method);
            Add("url.path", e.Path);
            Add("http.route", e.Route);
            Add("zt.certificate_sha256", e.CertificateHash);
            Add("zt.node", e.Node);
            Add("zt.policy_version", e.PolicyVersion);
            Add("zt.detail", e.Detail);
            items.Add(new("{OriginalFormat}", "{zt.outcome} {zt.reason}"));
            return items;
        }
    }
}
