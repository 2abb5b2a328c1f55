namespace KtZeroTrust.Core.Decisions;

/// <summary>
/// One decision, immutable once made. Made by <see cref="DecisionFactory"/> (which stamps id, time and node); the field
/// names are the decision log's schema.
/// </summary>
public sealed record DecisionEvent
{
    public required string Id { get; init; }
    public required DateTimeOffset Time { get; init; }
    public DecisionKind Kind { get; init; } = DecisionKind.Access;
    public required DecisionListener Listener { get; init; }

    /// <summary>The device serial, user or node the decision is about, when known.</summary>
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

    /// <summary>The node that made the decision.</summary>
    public string? Node { get; init; }

    /// <summary>Hash of the policy set in force (device access, user routes); empty where no policy applies.</summary>
    public string? PolicyVersion { get; init; }

    /// <summary>A sentence for people (what a detector saw, an operator's reason); never parsed.</summary>
    public string? Detail { get; init; }
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
