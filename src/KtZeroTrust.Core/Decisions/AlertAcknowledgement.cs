namespace KtZeroTrust.Core.Decisions;

/// <summary>An analyst's acknowledgement of an alert (a decision of kind alert, by its id).</summary>
public sealed record AlertAcknowledgement(string AlertId, string By, DateTimeOffset At, string? Note);

/// <summary>One step of an alert's case: <c>assign</c> (the text is the analyst), <c>note</c>, <c>ack</c>, <c>suspend</c>, <c>revoke</c>.</summary>
public sealed record AlertCaseEntry(string AlertId, string Action, string By, DateTimeOffset At, string? Text);

/// <summary>Where acknowledgements and cases live: the registry database, so every console node sees the same ones.</summary>
public interface IAlertAcknowledgementStore
{
    /// <summary>Appends a step to an alert's case.</summary>
    Task AddCaseEntryAsync(AlertCaseEntry entry, CancellationToken cancellationToken = default);

    /// <summary>An alert's case, oldest step first.</summary>
    Task<IReadOnlyList<AlertCaseEntry>> GetCaseAsync(string alertId, CancellationToken cancellationToken = default);

    /// <summary>The analyst each of these alerts is assigned to (the latest assignment; unassigned alerts are absent).</summary>
    Task<IReadOnlyDictionary<string, string>> FindAssigneesAsync(IReadOnlyCollection<string> alertIds, CancellationToken cancellationToken = default);

    /// <summary>Records (or replaces) the acknowledgement of an alert.</summary>
    Task AcknowledgeAsync(AlertAcknowledgement acknowledgement, CancellationToken cancellationToken = default);

    /// <summary>The acknowledgements of these alerts, by alert id (alerts without one are absent).</summary>
    Task<IReadOnlyDictionary<string, AlertAcknowledgement>> FindAcknowledgementsAsync(IReadOnlyCollection<string> alertIds, CancellationToken cancellationToken = default);
}

/// <summary>How urgently an alert needs an analyst.</summary>
public enum AlertSeverity
{
    Low,
    Medium,
    High,
    Critical,
}

public static class AlertSeverities
{
    /// <summary>
    /// By what the alert means for the network: a cloned identity is an attacker inside (critical); a unit that moved,
    /// connects from outside its site or a pipeline losing decisions, high; bursts of refusals, medium; idle, low.
    /// </summary>
    public static AlertSeverity Of(ReasonCode reason) => reason switch
    {
        ReasonCode.CloneSuspected or ReasonCode.KeyShared => AlertSeverity.Critical,
        ReasonCode.LocationDrift or ReasonCode.SourceOutsidePrefixes or ReasonCode.DecisionsLost or ReasonCode.DecisionSinkFailing => AlertSeverity.High,
        ReasonCode.DenialBurst or ReasonCode.SignInBurst or ReasonCode.DecisionSpoolGrowing => AlertSeverity.Medium,
        _ => AlertSeverity.Low,
    };

    public static string Name(AlertSeverity severity) => severity switch
    {
        AlertSeverity.Critical => "critical",
        AlertSeverity.High => "high",
        AlertSeverity.Medium => "medium",
        _ => "low",
    };
}
