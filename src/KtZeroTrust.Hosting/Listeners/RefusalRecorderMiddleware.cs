using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Hosting.Decisions;
using KtZeroTrust.Hosting.Problems;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace KtZeroTrust.Hosting.Listeners;

/// <summary>Why a request that was handed on (to the gateway's forwarder, say) still failed; what a role plugs in.</summary>
public readonly record struct ResponseFailure(ReasonCode Reason, string Detail);

/// <summary>A role's reading of a failed response it produced (the gateway reads its forwarder's error); null: not its failure.</summary>
public interface IResponseFailureClassifier
{
    ResponseFailure? Classify(HttpContext context, int status);
}

/// <summary>
/// The outermost step on every listener but the internal one: a request refused anywhere below (no endpoint, a method
/// not served, a body too slow or too large, ambiguous framing, an exception) is answered with problem+json and
/// recorded as a decision with a stable reason, unless the code that refused it already recorded one. No refusal is
/// answered by a framework page (the Development exception page included) or left out of the decision stream.
/// </summary>
public sealed partial class RefusalRecorderMiddleware(
    RequestDelegate next,
    DecisionRecorder recorder,
    IDecisionDurability durability,
    IEnumerable<IResponseFailureClassifier> classifiers,
    TimeProvider timeProvider,
    ILogger<RefusalRecorderMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var listener = ListenerContext.Get(context);
        if (listener == ListenerKind.Internal)
        {
            await next(context);
            return;
        }

        // No answer goes out before the decisions made for it are journaled: a killed process cannot lose an answered one.
        context.Response.OnStarting(static state => ((IDecisionDurability)state).WaitDurableAsync(((IDecisionDurability)state).Posted).AsTask(), durability);
        try
        {
            await DecideAsync(context, listener);
        }
        finally
        {
            // And decisions made after the answer started (a failure mid-response) before the request completes.
            await durability.WaitDurableAsync(durability.Posted);
        }
    }

    private async Task DecideAsync(HttpContext context, ListenerKind? listener)
    {
        var start = timeProvider.GetTimestamp();
        if (HasAmbiguousFraming(context.Request))
        {
            // Request smuggling's shape (RFC 9112 6.1): refused, never guessed at, and the connection is not reused.
            context.Response.Headers.Connection = "close";
            await RefuseAsync(context, listener, StatusCodes.Status400BadRequest, ReasonCode.RequestMalformed, "Transfer-Encoding and Content-Length together", start);
            return;
        }

        try
        {
            await next(context);
        }
        catch (BadHttpRequestException ex)
        {
            await RefuseAsync(context, listener, ex.StatusCode, ProblemResponses.ReasonFor(ex.StatusCode), ex.Message, start);
            return;
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is nobody left to answer. An attempt nothing recorded yet is recorded now.
            if (!RecordedDecision.IsRecorded(context))
            {
                Record(context, listener, 499, ReasonCode.RequestRefused, "client closed the connection before the answer", start);
            }

            return;
        }
        catch (Exception ex)
        {
            LogFailed(logger, ex, ListenerName(listener), context.Request.Path.Value);
            await RefuseAsync(context, listener, StatusCodes.Status500InternalServerError, ReasonCode.InternalError, null, start);
            return;
        }

        var status = context.Response.StatusCode;
        if (status < 400)
        {
            return;
        }

        if (Classify(context, status) is { } failure)
        {
            // Allowed and handed on, then failed (the gateway's forwarder: the client's body too slow, the upstream down): a second decision says so.
            Record(context, listener, status, failure.Reason, failure.Detail, start);
        }
        else if (!RecordedDecision.IsRecorded(context))
        {
            await RefuseAsync(context, listener, status, ProblemResponses.ReasonFor(status), null, start, failed: false);
        }
    }


    /// <summary>
    /// Both framings at once. Kestrel honours Transfer-Encoding and moves the Content-Length aside as
    /// <c>X-Content-Length</c> (seen in the tests: checking <c>Content-Length</c> alone finds nothing).
    /// </summary>
    private static bool HasAmbiguousFraming(HttpRequest request)
        => request.Headers.TransferEncoding.Count > 0 && (request.Headers.ContentLength is not null || request.Headers.ContainsKey("X-Content-Length"));

    private async Task RefuseAsync(HttpContext context, ListenerKind? listener, int status, ReasonCode reason, string? detail, long start, bool failed = true)
    {
        var decisionId = Record(context, listener, status, reason, detail, start);
        if (context.Response.HasStarted)
        {
            if (failed)
            {
                context.Abort(); // a half-written answer must not look complete
            }

            return;
        }

        context.Response.Clear();
        await ProblemResponses.WriteDenialAsync(context, status, reason, decisionId, detail);
    }

    private string Record(HttpContext context, ListenerKind? listener, int status, ReasonCode reason, string? detail, long start)
    {
        var origin = recorder.Origin(context, null, start);
        detail = detail is null ? $"HTTP {status}" : $"HTTP {status}: {detail}";
        var decision = recorder.Make.Refusal(listener is { } kind ? ListenerContext.ForDecision(kind) : DecisionListener.Unknown, reason, origin, detail);
        recorder.Record(context, decision);
        var decisionId = decision.Id;
        if (logger.IsEnabled(LogLevel.Information))
        {
            LogRefused(logger, ReasonCodes.Name(reason), status, ListenerName(listener), context.Connection.RemoteIpAddress?.ToString(), decisionId);
        }

        return decisionId;
    }

    private ResponseFailure? Classify(HttpContext context, int status)
    {
        foreach (var classifier in classifiers)
        {
            if (classifier.Classify(context, status) is { } failure)
            {
                return failure;
            }
        }

        return null;
    }

    private static string ListenerName(ListenerKind? listener) => listener is { } kind ? ListenerContext.Name(kind) : "unknown";

    [LoggerMessage(EventId = HostingEventIds.RequestRefused, Level = LogLevel.Information, Message = "Request refused: {Reason} ({Status}) on the {Listener} listener from {Source}, decision {DecisionId}")]
    private static partial void LogRefused(ILogger logger, string reason, int status, string listener, string? source, string decisionId);

    [LoggerMessage(EventId = HostingEventIds.RequestFailed, Level = LogLevel.Error, Message = "Request failed on the {Listener} listener at {Path}; answered 500 internal_error")]
    private static partial void LogFailed(ILogger logger, Exception exception, string listener, string? path);
}
