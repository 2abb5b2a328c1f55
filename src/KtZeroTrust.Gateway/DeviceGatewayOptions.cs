namespace KtZeroTrust.Gateway;

/// <summary>Device gateway settings. Bound from <c>ZeroTrust:Gateway</c>.</summary>
public sealed class DeviceGatewayOptions
{
    public const string SectionName = "ZeroTrust:Gateway";

    public static readonly TimeSpan DefaultMaxCertificateLifetime = TimeSpan.FromDays(30);
    public static readonly TimeSpan DefaultValidationCacheDuration = TimeSpan.FromMinutes(10);
    public const int DefaultValidationCacheSize = 100_000;

    /// <summary>Device certificates valid for longer than this are refused (a ten-year certificate is attack 4). Default 30 days.</summary>
    public TimeSpan MaxCertificateLifetime { get; set; } = DefaultMaxCertificateLifetime;

    /// <summary>How long a certificate's policy check is remembered (never beyond its NotAfter). Default 10 minutes.</summary>
    public TimeSpan ValidationCacheDuration { get; set; } = DefaultValidationCacheDuration;

    /// <summary>Most certificates remembered at once. Default 100,000.</summary>
    public int ValidationCacheSize { get; set; } = DefaultValidationCacheSize;

    /// <summary>How many device TLS handshakes run at once, and how many connections may wait for one (a reconnect storm).</summary>
    public HandshakeLimits Handshakes { get; set; } = new();

    /// <summary>Extra request headers stripped before forwarding, besides <c>X-ZT-*</c> and <c>X-Forwarded-Client-Cert</c>.</summary>
    public IList<string> StripHeaders { get; } = [];
}

/// <summary><c>ZeroTrust:Gateway:Handshakes</c>: the device listener's handshake admission (<see cref="Identity.DeviceHandshakeAdmission"/>).</summary>
public sealed class HandshakeLimits
{
    /// <summary>Handshakes in progress at once (each costs about a millisecond of one core). Default 128.</summary>
    public int MaxConcurrent { get; set; } = 128;

    /// <summary>New connections that may wait for a handshake slot: the listener's own accept backlog. Default 1,024.</summary>
    public int MaxWaiting { get; set; } = 1024;

    /// <summary>How long a connection waits for a slot before it is refused (a unit's own TLS timeout is longer). Default 2 s.</summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(2);
}
