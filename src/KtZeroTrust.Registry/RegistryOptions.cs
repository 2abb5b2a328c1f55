namespace KtZeroTrust.Registry;

/// <summary>Where the device registry lives. Bound from <c>ZeroTrust:Registry</c>.</summary>
public sealed class RegistryOptions
{
    public const string SectionName = "ZeroTrust:Registry";
    public const string DefaultFileName = "registry.db";

    /// <summary>SQLite database file. Default: <c>{DataDirectory}/registry.db</c>.</summary>
    public string? SqlitePath { get; set; }

    /// <summary>PostgreSQL connection string (Npgsql form); when set, the registry lives there instead of SQLite.</summary>
    public string? PostgreSql { get; set; }
}
