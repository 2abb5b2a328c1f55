using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Hosting.Decisions;
using KtZeroTrust.Hosting.Listeners;

namespace KtZeroTrust.SocConsole.Auditing;

/// <summary>Posts console actions and refusals as <c>admin</c> decisions (a sign-in burst as an alert).</summary>
public sealed class Audit(DecisionRecorder recorder, AuditThrottle throttle)
{
    /// <summary>
    /// A refused console request (no session, bad token, no anti-forgery token, throttled sign-in), rate-limited per
    /// source and reason: beyond the limit it is counted into a per-minute summary instead of recorded alone.
    /// </summary>
    public void PostRefusal(HttpContext context, string? subject, ReasonCode reason, string detail)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (throttle.Admit(context.Connection.RemoteIpAddress?.ToString(), reason, context.Request.Path.Value))
        {
            Post(context, subject, DecisionOutcome.Deny, reason, "console:" + context.Request.Path.Value, detail);
        }
        else
        {
            RecordedDecision.Mark(context, RecordedDecision.InSummary); // not again below
        }
    }

    /// <summary>An operator's action or refusal (<see cref="DecisionKind.Admin"/>), or a console alert.</summary>
    public void Post(HttpContext context, string? subject, DecisionOutcome outcome, ReasonCode reason, string route, string detail, DecisionKind kind = DecisionKind.Admin)
    {
        var origin = recorder.Origin(context, route);
        recorder.Record(context, kind == DecisionKind.Alert
            ? recorder.Make.Alert(DecisionListener.Console, reason, subject, origin, detail)
            : recorder.Make.Admin(outcome, reason, subject, origin, detail));
    }
}
