namespace KtZeroTrust.Core.Decisions;

/// <summary>One access decision. The field names are the decision log's schema.</summary>
public sealed class DecisionEvent
{
    public const string AccessKind = "access";
    public const string SystemKind = "system";
    public const string AlertKind = "alert";
    public const string AttestationKind = "attestation";
    public const string EnrollmentKind = "enrollment";
    public const string LifecycleKind = "lifecycle";
    public const string AdminKind = "admin";

    public required string Id { get; init; }
    public required DateTimeOffset Time { get; init; }

    /// <summary>
    /// <c>access</c> (a request, handshake or connection judged), <c>attestation</c> (evidence judged), <c>enrollment</c>
    /// (a certificate asked for), <c>lifecycle</c> (a device changed state), <c>admin</c> (an operator acted),
    /// <c>alert</c> (a detector fired) or <c>system</c> (the gateway's own state changed).
    /// </summary>
    public string Kind { get; init; } = AccessKind;

    /// <summary>Which listener took the request: device, enrollment, user, console.</summary>
    public required string Listener { get; init; }

    /// <summary>The device serial (or, later, the user) the decision is about, when known.</summary>
    public string? Subject { get; init; }
    public string? SourceAddress { get; init; }
    public int SourcePort { get; init; }
    public string? Method { get; init; }
    public string? Path { get; init; }
    public string? Route { get; init; }
    public required DecisionOutcome Outcome { get; init; }
    public required ReasonCode Reason { get; init; }
    public string? CertificateHash { get; init; }

    /// <summary>Time spent deciding, in microseconds.</summary>
    public double LatencyMicroseconds { get; init; }

    /// <summary>The node that made the decision; stamped by the pipeline when the producer leaves it empty.</summary>
    public string? Node { get; set; }

    /// <summary>Hash of the policy set in force (device access, user routes); empty where no policy applies.</summary>
    public string? PolicyVersion { get; init; }

    /// <summary>A sentence for people (what a detector saw, an operator's reason); never parsed.</summary>
    public string? Detail { get; init; }

    /// <summary>This node's journal position, stamped by the pipeline (0 until then); not part of the exported schema.</summary>
    public long Sequence { get; set; }
}

/// <summary>Takes decisions for the monitoring pipeline. <see cref="Post"/> never blocks.</summary>
public interface IDecisionSink
{
    void Post(DecisionEvent decision);
}

/// <summary>
/// When posted decisions are durable (written to the node's journal): a request that posted decisions waits for
/// <see cref="WaitDurableAsync"/> before its response completes, so nothing it answered can be lost with the process.
/// </summary>
public interface IDecisionDurability
{
    /// <summary>How many decisions have been posted so far (a position in the order the journal writes them).</summary>
    long Posted { get; }

    /// <summary>Completes once the first <paramref name="posted"/> decisions are journaled (or the journal has failed on them, which is alerted).</summary>
    ValueTask WaitDurableAsync(long posted);
}
