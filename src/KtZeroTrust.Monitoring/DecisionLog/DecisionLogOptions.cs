namespace KtZeroTrust.Monitoring.DecisionLog;

/// <summary>The local decision log. Bound from <c>ZeroTrust:DecisionLog</c>.</summary>
public sealed class DecisionLogOptions
{
    public const string SectionName = "ZeroTrust:DecisionLog";

    /// <summary>JSON-lines file. Default: <c>{DataDirectory}/decisions.jsonl</c>.</summary>
    public string? Path { get; set; }

    /// <summary>The log's path: the configured one, or <c>decisions.jsonl</c> in <paramref name="dataDirectory"/>.</summary>
    public static string PathFor(Microsoft.Extensions.Configuration.IConfiguration configuration, string dataDirectory)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return configuration[$"{SectionName}:{nameof(Path)}"] is { Length: > 0 } path ? path : System.IO.Path.Combine(dataDirectory, "decisions.jsonl");
    }
}
