using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.DecisionLog;

namespace KtZeroTrust.Monitoring.Store;

/// <summary>
/// Stored decisions, indexed for the SOC's questions: one device's decisions, denials by reason, a site's units, alerts,
/// per-minute counts. Written by <see cref="DecisionStoreSink"/> (a lane of the pipeline); read by the console.
/// </summary>
public interface IDecisionStore
{
    /// <summary>Creates or upgrades the schema (and today's partitions); called once at start.</summary>
    Task MigrateAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Stores a batch from one node's pipeline, exactly once: decisions at or below the node's last stored journal
    /// sequence are checked by id and skipped when present (a replay after a crash), in one transaction with the
    /// per-minute counts.
    /// </summary>
    Task WriteAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken);

    /// <summary>The newest decisions that match, newest first.</summary>
    Task<IReadOnlyList<JournaledDecision>> QueryAsync(DecisionFilter filter, CancellationToken cancellationToken);

    /// <summary>Decisions per bucket, kind, outcome and reason (from the per-minute counts, never the rows), oldest bucket first.</summary>
    Task<IReadOnlyList<DecisionCount>> CountAsync(DateTimeOffset since, DateTimeOffset until, TimeSpan bucket, CancellationToken cancellationToken);

    /// <summary>For each of these devices with decisions since <paramref name="since"/>: allowed, denied, last decision.</summary>
    Task<IReadOnlyDictionary<string, SubjectActivity>> ActivityAsync(IReadOnlyCollection<string> subjects, DateTimeOffset since, CancellationToken cancellationToken);

    /// <summary>Removes decisions older than <paramref name="cutoff"/> and prepares the days ahead; returns the days (or rows, SQLite) removed.</summary>
    Task<long> MaintainAsync(DateTimeOffset now, DateTimeOffset cutoff, CancellationToken cancellationToken);
}

/// <summary>
/// What to find: each set field narrows the result. <see cref="Devices"/> are decisions about devices (any listener but
/// the user one); <see cref="User"/> a user's. <see cref="Before"/> pages on: decisions strictly older than it.
/// </summary>
public sealed record DecisionFilter
{
    public DecisionOutcome? Outcome { get; init; }
    public string? Reason { get; init; }
    public string? Kind { get; init; }
    public IReadOnlyCollection<string>? Devices { get; init; }
    public string? User { get; init; }
    public string? Route { get; init; }
    public string? Source { get; init; }
    public string? Id { get; init; }
    public DateTimeOffset? Since { get; init; }
    public DateTimeOffset? Until { get; init; }
    public int Limit { get; init; } = 200;

    /// <summary>The same filter over one decision (the live feed, and reading a log or stream where there is no store).</summary>
    public bool Matches(DecisionEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return (Outcome is not { } outcome || e.Outcome == outcome)
            && (Reason is not { Length: > 0 } reason || ReasonCodes.Name(e.Reason) == reason)
            && (Kind is not { Length: > 0 } kind || DecisionNames.Name(e.Kind) == kind)
            && (Devices is null || (e.Subject is { } subject && e.Listener != DecisionListener.User && Devices.Contains(subject)))
            && (User is not { Length: > 0 } user || (e.Subject == user && e.Listener == DecisionListener.User))
            && (Route is not { Length: > 0 } route || e.Route == route)
            && (Source is not { Length: > 0 } source || e.SourceAddress == source)
            && (Id is not { Length: > 0 } id || e.Id == id)
            && (Since is not { } since || e.Time >= since)
            && (Until is not { } until || e.Time <= until);
    }
}

/// <summary>A count of the per-minute table: <see cref="Kind"/> is the decision kind's name (access, attestation, enrollment).</summary>
public sealed record DecisionCount(DateTimeOffset Bucket, string Kind, DecisionOutcome Outcome, string Reason, long Count);

public sealed record SubjectActivity(long Allowed, long Denied, DateTimeOffset Last, string? LastAddress, string LastReason);
