using Microsoft.Extensions.Configuration;

namespace KtZeroTrust.Monitoring.Sinks;

/// <summary>
/// The shared decision stream. Bound from <c>ZeroTrust:DecisionStream</c>; with no Redis of its own it uses the allow
/// list's (<c>ZeroTrust:AllowList:Redis</c>), and with neither there is no stream (the local log only).
/// </summary>
public sealed class DecisionStreamOptions
{
    public const string SectionName = "ZeroTrust:DecisionStream";

    /// <summary>Redis configuration string; empty: the allow list's Redis, if any.</summary>
    public string? Redis { get; set; }

    public string StreamKey { get; set; } = RedisStreamSink.DefaultStreamKey;

    /// <summary>Decisions per stream entry (1-1000). Default 1.</summary>
    public int EventsPerEntry { get; set; } = 1;

    /// <summary>False only to measure what recording costs (bench/): then nothing is recorded at all.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The options as configured, with the allow list's Redis as the fallback (read once, at start).</summary>
    public static DecisionStreamOptions Read(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = configuration.GetSection(SectionName).Get<DecisionStreamOptions>() ?? new DecisionStreamOptions();
        if (string.IsNullOrWhiteSpace(options.Redis))
        {
            options.Redis = configuration["ZeroTrust:AllowList:Redis"] is { Length: > 0 } allowList ? allowList : null;
        }

        return options;
    }
}
