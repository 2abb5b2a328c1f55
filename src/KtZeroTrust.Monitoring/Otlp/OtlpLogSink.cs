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
        var exporter = new CountingExporter(new OtlpLogExporter(options.ExporterOptions("logs", () => new HttpClient(new ErrorRecordingHandler(results) { InnerHandler = new SocketsHttpHandler() })
        {
            Timeout = options.Timeout,
        })), results);
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
            foreach (var journaled in batch)
            {
                var e = journaled.Event;
                _current = e;
                var level = e.Kind == DecisionKind.Alert ? LogLevel.Error : e.Outcome == DecisionOutcome.Deny ? LogLevel.Warning : LogLevel.Information;
                _logger.Log(level, new EventId(1, DecisionNames.Name(e.Kind)), new DecisionState(e), null, static (state, _) => state.Message);
                _results.Logged();
            }

            _current = null;
            // ForceFlush can return once the SDK has taken the last records off its queue, before the request carrying
            // them has even been sent: wait until the exporter has finished with every record logged so far, then judge.
            if (!_processor.ForceFlush(_flushTimeoutMs) || !_results.WaitAllFinished(_flushTimeoutMs))
            {
                _results.GiveUpWaiting(); // the pipeline retries this batch; records the SDK dropped must not block every later one
                throw new TimeoutException("The OTLP exporter did not finish within its timeout.");
            }

            if (_results.Failures != failuresBefore)
            {
                throw new IOException($"The OTLP collector refused or did not answer ({_results.LastError ?? "export failed"}).");
            }
        }, cancellationToken);
    }

    public void Dispose()
    {
        _factory.Dispose();
        _processor.Dispose();
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

    /// <summary>
    /// Counts the records logged and the records the exporter has finished with (and how many of those failed): the
    /// SDK's processor reports neither back to the caller.
    /// </summary>
    private sealed class ResultRecorder
    {
        private readonly object _gate = new();
        private long _logged;
        private long _finished;
        private long _failures;

        public long Failures => Interlocked.Read(ref _failures);

        public string? LastError { get; set; }

        public void Logged() => Interlocked.Increment(ref _logged);

        public void Finished(int records, bool success)
        {
            lock (_gate)
            {
                _finished += records;
                if (!success)
                {
                    _failures++;
                }

                Monitor.PulseAll(_gate);
            }
        }

        public void GiveUpWaiting()
        {
            lock (_gate)
            {
                Interlocked.Exchange(ref _logged, _finished);
            }
        }

        public bool WaitAllFinished(int timeoutMilliseconds)
        {
            var deadline = Environment.TickCount64 + timeoutMilliseconds;
            lock (_gate)
            {
                while (_finished < Interlocked.Read(ref _logged))
                {
                    var left = deadline - Environment.TickCount64;
                    if (left <= 0 || !Monitor.Wait(_gate, (int)left))
                    {
                        return _finished >= Interlocked.Read(ref _logged);
                    }
                }

                return true;
            }
        }
    }

    /// <summary>The OTLP exporter, counted: its result covers the whole request that carried the batch's records.</summary>
    private sealed class CountingExporter(OtlpLogExporter inner, ResultRecorder results) : BaseExporter<LogRecord>
    {
        // The OTLP exporter takes the resource (service.name, instance) from its provider, which the SDK gives only to
        // the exporter it was handed (this one); its setter is internal, hence reflection, once. The export test checks it.
        private static readonly System.Reflection.MethodInfo SetParentProvider =
            typeof(BaseExporter<LogRecord>).GetProperty(nameof(ParentProvider))!.GetSetMethod(nonPublic: true)!;

        public override ExportResult Export(in Batch<LogRecord> batch)
        {
            if (inner.ParentProvider is null && ParentProvider is not null)
            {
                SetParentProvider.Invoke(inner, [ParentProvider]);
            }

            var records = (int)batch.Count;
            var result = ExportResult.Failure;
            try
            {
                result = inner.Export(batch);
                return result;
            }
            finally
            {
                results.Finished(records, result == ExportResult.Success);
            }
        }

        protected override bool OnForceFlush(int timeoutMilliseconds) => inner.ForceFlush(timeoutMilliseconds);

        protected override bool OnShutdown(int timeoutMilliseconds) => inner.Shutdown(timeoutMilliseconds);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>Keeps why the last export request failed, for the sink's error (the exporter's result says only that it did).</summary>
    private sealed class ErrorRecordingHandler(ResultRecorder results) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            try
            {
                var response = await base.SendAsync(request, cancellationToken);
                if (!response.IsSuccessStatusCode)
                {
                    results.LastError = $"HTTP {(int)response.StatusCode}";
                }

                return response;
            }
            catch (Exception ex)
            {
                results.LastError = $"{ex.GetType().Name}: {ex.Message}";
                throw;
            }
        }

        protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            try
            {
                var response = base.Send(request, cancellationToken);
                if (!response.IsSuccessStatusCode)
                {
                    results.LastError = $"HTTP {(int)response.StatusCode}";
                }

                return response;
            }
            catch (Exception ex)
            {
                results.LastError = $"{ex.GetType().Name}: {ex.Message}";
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
