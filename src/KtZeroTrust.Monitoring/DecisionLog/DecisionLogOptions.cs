namespace KtZeroTrust.Monitoring.DecisionLog;

/// <summary>The local decision log. Bound from <c>ZeroTrust:DecisionLog</c>.</summary>
public sealed class DecisionLogOptions
{
    public const string SectionName = "ZeroTrust:DecisionLog";

    /// <summary>JSON-lines file. Default: <c>{DataDirectory}/decisions.jsonl</c>.</summary>
    public string? Path { get; set; }
}
