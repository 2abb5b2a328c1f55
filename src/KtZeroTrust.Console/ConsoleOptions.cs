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

    /// <summary>
    /// How new password hashes are made: <c>pbkdf2-sha256</c> (default) or <c>pbkdf2-sha512</c>. Each account keeps the
    /// algorithm and iterations its hash was made with; an account whose parameters differ from these is rehashed at
    /// its next successful sign-in, so raising them upgrades every active account without a reset.
    /// </summary>
    public string PasswordHashAlgorithm { get; set; } = "pbkdf2-sha256";

    /// <summary>PBKDF2 iterations for new hashes. Default 600,000 (OWASP's figure for PBKDF2-HMAC-SHA256); at least 100,000.</summary>
    public int PasswordHashIterations { get; set; } = 600_000;
}
