using System.Net;

namespace KtZeroTrust.Core.Decisions;

/// <summary>
/// Where a decision came from: the peer, the request and the route, and how long deciding took. Filled from the
/// request by the HTTP recorder, from the connection by the TLS layer, or just a route for background decisions.
/// </summary>
public readonly record struct DecisionOrigin(
    string? SourceAddress = null,
    int SourcePort = 0,
    string? Method = null,
    string? Path = null,
    string? Route = null,
    double LatencyMicroseconds = 0)
{
    /// <summary>A decision with no peer: a detector, the change feed, the pipeline.</summary>
    public static DecisionOrigin At(string route) => new(Route: route);

    /// <summary>A connection-level decision (handshake, abort): the peer and the route.</summary>
    public static DecisionOrigin Connection(IPEndPoint? peer, string? route, double latencyMicroseconds = 0)
        => new(peer?.Address.ToString(), peer?.Port ?? 0, Route: route, LatencyMicroseconds: latencyMicroseconds);
}

/// <summary>
/// The one way a decision is made: each factory names its kind, stamps a sortable id, the time and this node, and
/// derives the outcome where the reason decides it. Thread-safe; one per node.
/// </summary>
public sealed class DecisionFactory(string node, TimeProvider timeProvider)
{
    private readonly DecisionIdGenerator _ids = new(timeProvider);

    public string Node => node;

    /// <summary>An id taken ahead of the decision (a request logs it before it is made); pass it back as <c>id</c>.</summary>
    public string NextId() => _ids.Next();

    /// <summary>A request, handshake or connection judged: allowed exactly when the reason is <see cref="ReasonCode.Allowed"/>.</summary>
    public DecisionEvent Access(DecisionListener listener, ReasonCode reason, string? subject, in DecisionOrigin origin,
        string? certificateHash = null, string? policyVersion = null, string? detail = null, string? id = null)
        => Make(DecisionKind.Access, listener, OutcomeOf(reason), reason, subject, origin, certificateHash, policyVersion, detail, id);

    /// <summary>
    /// A request or connection refused below the application's own checks (the HTTP server, a method or path nothing
    /// serves): an operator's action on the console listener, an access decision on the others.
    /// </summary>
    public DecisionEvent Refusal(DecisionListener listener, ReasonCode reason, in DecisionOrigin origin, string detail)
        => listener == DecisionListener.Console
            ? Admin(DecisionOutcome.Deny, reason, null, origin, detail)
            : Make(DecisionKind.Access, listener, DecisionOutcome.Deny, reason, null, origin, null, null, detail, null);

    /// <summary>A device TLS handshake refused, or an open connection cut: always a denial, with the certificate.</summary>
    public DecisionEvent Handshake(ReasonCode reason, string? subject, IPEndPoint? peer, string? certificateHash, string route, double latencyMicroseconds = 0)
        => Make(DecisionKind.Access, DecisionListener.Device, DecisionOutcome.Deny, reason, subject, DecisionOrigin.Connection(peer, route, latencyMicroseconds), certificateHash, null, null, null);

    /// <summary>Evidence judged (<see cref="DecisionKind.Attestation"/>) or a certificate asked for (<see cref="DecisionKind.Enrollment"/>).</summary>
    public DecisionEvent Enrollment(DecisionKind kind, ReasonCode reason, string? subject, in DecisionOrigin origin, string? certificateHash = null, string? detail = null, string? id = null)
    {
        if (kind is not (DecisionKind.Attestation or DecisionKind.Enrollment))
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "An enrollment decision is an attestation or an enrollment.");
        }

        return Make(kind, DecisionListener.Enrollment, OutcomeOf(reason), reason, subject, origin, certificateHash, null, detail, id);
    }

    /// <summary>An operator's action or a refusal on the console listener.</summary>
    public DecisionEvent Admin(DecisionOutcome outcome, ReasonCode reason, string? subject, in DecisionOrigin origin, string? detail = null, string? id = null)
        => Make(DecisionKind.Admin, DecisionListener.Console, outcome, reason, subject, origin, null, null, detail, id);

    /// <summary>A detector fired: always a denial (an alert is never good news).</summary>
    public DecisionEvent Alert(DecisionListener listener, ReasonCode reason, string? subject, in DecisionOrigin origin, string? detail = null, string? certificateHash = null)
        => Make(DecisionKind.Alert, listener, DecisionOutcome.Deny, reason, subject, origin, certificateHash, null, detail, null);

    /// <summary>A device changed state (suspended by a detector, revoked by an operator).</summary>
    public DecisionEvent Lifecycle(DecisionListener listener, string subject, string route, string detail)
        => Make(DecisionKind.Lifecycle, listener, DecisionOutcome.Deny, ReasonCode.LifecycleTransition, subject, DecisionOrigin.At(route), null, null, detail, null);

    /// <summary>The node's own state changed; the subject is the node.</summary>
    public DecisionEvent System(DecisionListener listener, DecisionOutcome outcome, ReasonCode reason, string route, string? detail = null)
        => Make(DecisionKind.System, listener, outcome, reason, node, DecisionOrigin.At(route), null, null, detail, null);

    private static DecisionOutcome OutcomeOf(ReasonCode reason) => reason == ReasonCode.Allowed ? DecisionOutcome.Allow : DecisionOutcome.Deny;

    private DecisionEvent Make(DecisionKind kind, DecisionListener listener, DecisionOutcome outcome, ReasonCode reason, string? subject,
        in DecisionOrigin origin, string? certificateHash, string? policyVersion, string? detail, string? id) => new()
    {
        Id = id ?? _ids.Next(),
        Time = timeProvider.GetUtcNow(),
        Kind = kind,
        Listener = listener,
        Subject = subject,
        SourceAddress = origin.SourceAddress,
        SourcePort = origin.SourcePort,
        Method = origin.Method,
        Path = origin.Path,
        Route = origin.Route,
        Outcome = outcome,
        Reason = reason,
        CertificateHash = certificateHash,
        LatencyMicroseconds = origin.LatencyMicroseconds,
        Node = node,
        PolicyVersion = policyVersion,
        Detail = detail,
    };
}
