using KtZeroTrust.Monitoring.Sinks;
using Microsoft.Extensions.Configuration;

namespace KtZeroTrust.Monitoring.Store;

/// <summary>
/// The decision store (<c>ZeroTrust:DecisionStore</c>): where the console's queries, device pages, summaries and exports
/// read decisions from. PostgreSQL when <see cref="PostgreSql"/> is set (shared by every node, each writing its own
/// decisions); otherwise SQLite in the node's data directory, on by default only where no shared stream is configured
/// (the embedded default: a node that reads the fleet from the stream would otherwise show only its own decisions).
/// </summary>
public sealed class DecisionStoreOptions
{
    public const string SectionName = "ZeroTrust:DecisionStore";
    public const string DefaultFileName = "decisions.db";

    /// <summary>On or off; unset: on with PostgreSQL, or with SQLite where no shared Redis stream is configured.</summary>
    public bool? Enabled { get; set; }

    /// <summary>PostgreSQL connection string (Npgsql form).</summary>
    public string? PostgreSql { get; set; }

    /// <summary>SQLite file. Default: <c>{DataDirectory}/decisions.db</c>.</summary>
    public string? SqlitePath { get; set; }

    /// <summary>Days of decisions kept (whole days: PostgreSQL drops a day's partition once all of it is older). Default 30.</summary>
    public int RetentionDays { get; set; } = 30;

    /// <summary>Whether a store is configured at all, from the whole configuration (the stream's settings decide the default).</summary>
    public bool IsOn(IConfiguration configuration)
        => Enabled ?? (PostgreSql is { Length: > 0 } || DecisionStreamOptions.Read(configuration).Redis is not { Length: > 0 });

    public static DecisionStoreOptions Read(IConfiguration configuration)
        => configuration.GetSection(SectionName).Get<DecisionStoreOptions>() ?? new DecisionStoreOptions();

    public IEnumerable<string> Problems()
    {
        if (RetentionDays is < 1 or > 3650)
        {
            yield return $"{SectionName}:RetentionDays must be between 1 and 3650 (it is {RetentionDays}).";
        }
    }
}
