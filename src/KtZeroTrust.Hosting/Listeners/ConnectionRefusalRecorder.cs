using System.Diagnostics.Metrics;
using KtZeroTrust.Core.Decisions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KtZeroTrust.Hosting.Listeners;

/// <summary>
/// Requests Kestrel refuses before the application sees them (a malformed request line or header, headers too large
/// or too slow, an unknown HTTP version, a TLS handshake that fails) are answered by Kestrel and end their connection. Kestrel reports each ended
/// connection with its <c>error.type</c> on the <c>kestrel.connection.duration</c> instrument; the listener
/// middleware tags every connection with its listener and peer, so each such refusal becomes a decision here.
/// </summary>
public sealed partial class ConnectionRefusalRecorder(IMeterFactory meters, IDecisionSink decisions, DecisionFactory decisionFactory, ILogger<ConnectionRefusalRecorder> logger)
    : IHostedService, IDisposable
{

    /// <summary>Set on a connection whose refusal was already recorded (the device handshake's own decision).</summary>
    public const string RecordedTag = "zt.recorded";

    private const string KestrelMeter = "Microsoft.AspNetCore.Server.Kestrel";
    private const string ConnectionDuration = "kestrel.connection.duration";

    private MeterListener? _listener;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                // Scope: this host's own Kestrel (several hosts may share a process, as in the tests).
                if (instrument.Meter.Name == KestrelMeter && instrument.Name == ConnectionDuration && ReferenceEquals(instrument.Meter.Scope, meters))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _listener.SetMeasurementEventCallback<double>(OnConnectionEnded);
        _listener.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _listener?.Dispose();
        _listener = null;
        return Task.CompletedTask;
    }

    public void Dispose() => _listener?.Dispose();

    /// <summary>
    /// The reason for a connection Kestrel ended with an error (its <c>error.type</c> values, as Kestrel 10 names them).
    /// Left out (null): errors of a request the application has already answered and recorded (body too slow or too
    /// large, aborted by the application, a slow reader of the response) and a peer that merely went away or idled;
    /// any other error (HTTP/2 protocol violations, <c>other_error</c> such as a transfer coding other than chunked,
    /// too many connections) is a refusal: better recorded twice than not at all.
    /// </summary>
    public static ReasonCode? ReasonFor(string? errorType) => errorType switch
    {
        null or "min_request_body_data_rate" or "max_request_body_size_exceeded" or "unexpected_end_of_request_content" or "invalid_body_reader_state"
            or "aborted_by_app" or "write_canceled" or "min_response_data_rate" or "response_content_length_mismatch" or "error_writing_headers"
            or "error_after_starting_response" or "connection_reset" or "io_error" or "keep_alive_timeout" or "app_shutdown_timeout" => null,
        "request_headers_timeout" => ReasonCode.RequestTimeout,
        "tls_handshake_failed" or "tls_not_supported" or "insufficient_tls_version" => ReasonCode.TlsHandshakeFailed,
        "invalid_request_line" or "invalid_request_headers" or "invalid_http_version" or "error_reading_headers"
            or "max_request_header_count_exceeded" or "max_request_headers_total_size_exceeded" => ReasonCode.RequestMalformed,
        _ => ReasonCode.RequestRefused,
    };

    private void OnConnectionEnded(Instrument instrument, double seconds, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        string? errorType = null, listener = null;
        System.Net.IPEndPoint? peer = null;
        var recorded = false;
        foreach (var tag in tags)
        {
            switch (tag.Key)
            {
                case "error.type": errorType = tag.Value as string; break;
                case ListenerContext.ListenerTag: listener = tag.Value as string; break;
                case ListenerContext.PeerTag: peer = tag.Value as System.Net.IPEndPoint; break;
                case RecordedTag: recorded = true; break;
            }
        }

        if (recorded || listener is null || ListenerContext.Parse(listener) is not { } kind || kind == ListenerKind.Internal || ReasonFor(errorType) is not { } reason)
        {
            return;
        }

        var origin = DecisionOrigin.Connection(peer, null);
        var detail = "refused by the HTTP server before the application: " + errorType;
        var decision = decisionFactory.Refusal(ListenerContext.ForDecision(kind), reason, origin, detail);
        decisions.Post(decision);
        LogRefused(logger, ReasonCodes.Name(reason), errorType!, listener, origin.SourceAddress, decision.Id);
    }

    [LoggerMessage(EventId = HostingEventIds.ConnectionRequestRefused, Level = LogLevel.Information, Message = "Request refused by the HTTP server: {Reason} ({ErrorType}) on the {Listener} listener from {Source}, decision {DecisionId}")]
    private static partial void LogRefused(ILogger logger, string reason, string errorType, string listener, string? source, string decisionId);
}
