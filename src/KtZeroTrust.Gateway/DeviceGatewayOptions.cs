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

    /// <summary>Extra request headers stripped before forwarding, besides <c>X-ZT-*</c> and <c>X-Forwarded-Client-Cert</c>.</summary>
    public IList<string> StripHeaders { get; } = [];
}
