using KtZeroTrust.Core.Decisions;
using Microsoft.AspNetCore.Http;

namespace KtZeroTrust.Hosting.Decisions;

/// <summary>
/// The HTTP side of recording a decision: the origin (peer, method, path, route, latency) read from the request in one
/// place, and the post that marks the request as recorded so no refusal recorder records it a second time.
/// </summary>
public sealed class DecisionRecorder(IDecisionSink sink, DecisionFactory factory, TimeProvider timeProvider)
{
    /// <summary>The node's one factory: every decision is made through it.</summary>
    public DecisionFactory Make => factory;

    /// <summary>The request's origin; the latency runs from <paramref name="startTimestamp"/> (0: not measured).</summary>
    public DecisionOrigin Origin(HttpContext context, string? route, long startTimestamp = 0)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new DecisionOrigin(
            context.Connection.RemoteIpAddress?.ToString(),
            context.Connection.RemotePort,
            context.Request.Method,
            context.Request.Path.Value,
            route,
            startTimestamp == 0 ? 0 : timeProvider.GetElapsedTime(startTimestamp).TotalMicroseconds);
    }

    /// <summary>Posts a request's decision and marks the request as recorded.</summary>
    public void Record(HttpContext context, DecisionEvent decision)
    {
        sink.Post(decision);
        RecordedDecision.Mark(context, decision.Id);
    }

    /// <summary>Posts a decision that belongs to no request (a connection, a background service), or one the caller marks itself.</summary>
    public void Post(DecisionEvent decision) => sink.Post(decision);
}
