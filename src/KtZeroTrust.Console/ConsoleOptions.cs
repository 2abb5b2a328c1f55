namespace KtZeroTrust.SocConsole;

/// <summary>The console role's own settings (<c>ZeroTrust:Console</c>).</summary>
public sealed class ConsoleOptions
{
    public const string SectionName = "ZeroTrust:Console";

    /// <summary>
    /// Redis (StackExchange.Redis configuration, Sentinel included) shared by every console node: signed-in sessions and
    /// the Data Protection key ring (cookies, sign-in state, anti-forgery tokens). Unset: this node's memory and
    /// data directory, which is right for one node only.
    /// </summary>
    public string? Redis { get; set; }

    /// <summary>Prefix of the console's Redis keys, so several deployments can share one Redis.</summary>
    public string KeyPrefix { get; set; } = "zt:console:";
}
