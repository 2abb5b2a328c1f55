namespace KtZeroTrust.Core.Decisions;

/// <summary>An analyst's acknowledgement of an alert (a decision of kind alert, by its id).</summary>
public sealed record AlertAcknowledgement(string AlertId, string By, DateTimeOffset At, string? Note);

/// <summary>Where acknowledgements live: the registry database, so every console node sees the same ones.</summary>
public interface IAlertAcknowledgementStore
{
    /// <summary>Records (or replaces) the acknowledgement of an alert.</summary>
    Task AcknowledgeAsync(AlertAcknowledgement acknowledgement, CancellationToken cancellationToken = default);

    /// <summary>The acknowledgements of these alerts, by alert id (alerts without one are absent).</summary>
    Task<IReadOnlyDictionary<string, AlertAcknowledgement>> FindAcknowledgementsAsync(IReadOnlyCollection<string> alertIds, CancellationToken cancellationToken = default);
}
