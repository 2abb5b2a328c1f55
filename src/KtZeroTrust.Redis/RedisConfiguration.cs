using System.Security.Cryptography.X509Certificates;
using StackExchange.Redis;

namespace KtZeroTrust.Redis;

/// <summary>
/// Reads the product's Redis configuration string into StackExchange.Redis options. The string is StackExchange.Redis's
/// own syntax (<c>host:port[,host:port...],user=,password=,ssl=,sslHost=,serviceName=,protocol=resp3,...</c>; with
/// <c>serviceName</c> the endpoints are Sentinels and the primary is found through them) plus two keys of ours:
/// <list type="bullet">
/// <item><c>sslCaFile=/path/ca.pem</c>: the server certificate must chain to these CAs and no other (the system store is
/// not consulted: <see cref="ConfigurationOptions.TrustIssuer(string)"/> alone would accept either);</item>
/// <item><c>commandTimeout=ms</c>: sets both <c>syncTimeout</c> and <c>asyncTimeout</c>.</item>
/// </list>
/// Defaults differ from the library's where a security gateway needs it: never abort on a failed first connect (a node
/// starts while Redis is away and each feature degrades in its own way), and fail fast while disconnected
/// (<see cref="BacklogPolicy.FailFast"/>: a request is never held in a backlog waiting for Redis).
/// </summary>
public static class RedisConfiguration
{
    /// <param name="configuration">The configuration string.</param>
    /// <param name="clientName">Sent with CLIENT SETNAME unless the string names one (<c>name=</c>).</param>
    public static ConfigurationOptions Parse(string configuration, string clientName = "ktzerotrust")
    {
        if (string.IsNullOrWhiteSpace(configuration))
        {
            throw new FormatException("The Redis configuration is empty; expected e.g. '127.0.0.1:6379,password=...'.");
        }

        string? caFile = null;
        int? commandTimeout = null;
        var rest = new List<string>();
        foreach (var part in configuration.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? "" : part[..eq].Trim();
            var value = eq < 0 ? "" : part[(eq + 1)..].Trim();
            if (key.Equals("sslCaFile", StringComparison.OrdinalIgnoreCase))
            {
                caFile = value.Length > 0 ? value : throw new FormatException("Redis configuration: sslCaFile is empty.");
            }
            else if (key.Equals("commandTimeout", StringComparison.OrdinalIgnoreCase))
            {
                commandTimeout = int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms) && ms is >= 1 and <= 3_600_000
                    ? ms
                    : throw new FormatException($"Redis configuration: commandTimeout must be milliseconds from 1 to 3600000 (was '{value}').");
            }
            else
            {
                rest.Add(part);
            }
        }

        ConfigurationOptions options;
        try
        {
            options = ConfigurationOptions.Parse(string.Join(',', rest));
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"Redis configuration: {ex.Message}", ex);
        }

        if (options.EndPoints.Count == 0)
        {
            throw new FormatException("Redis configuration: no host:port given.");
        }

        var explicitAbort = rest.Any(p => p.StartsWith("abortConnect", StringComparison.OrdinalIgnoreCase));
        if (!explicitAbort)
        {
            options.AbortOnConnectFail = false;
        }

        options.BacklogPolicy = BacklogPolicy.FailFast;
        options.ClientName ??= clientName;
        options.ReconnectRetryPolicy = new ExponentialRetry(250, 5000);
        if (commandTimeout is { } timeout)
        {
            options.SyncTimeout = timeout;
            options.AsyncTimeout = timeout;
        }

        if (caFile is not null)
        {
            TrustOnly(options, caFile);
        }

        return options;
    }

    /// <summary>The configuration without secrets, for logs.</summary>
    public static string Describe(ConfigurationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.ToString(includePassword: false);
    }

    private static void TrustOnly(ConfigurationOptions options, string caFile)
    {
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(caFile);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new FormatException($"Redis configuration: sslCaFile '{caFile}' cannot be read as PEM certificates: {ex.Message}", ex);
        }

        if (roots.Count == 0)
        {
            throw new FormatException($"Redis configuration: sslCaFile '{caFile}' holds no certificate.");
        }

        options.Ssl = true;
        options.CertificateValidation += KtZeroTrust.Pki.Certificates.TrustPolicies.ServerTrustedBy(roots);
    }
}
