using System.Globalization;
using System.Net;

namespace KtZeroTrust.Redis;

/// <summary>
/// Where and how to connect. <see cref="Parse"/> reads the configuration-string form the well-known .NET clients use:
/// <c>host:port,user=u,password=p,ssl=true,sslHost=h,sslCaFile=/path/ca.pem,defaultDatabase=0,protocol=3,
/// connectTimeout=5000,commandTimeout=5000,abortConnect=false,name=gateway-1</c>.
/// </summary>
public sealed class RedisOptions
{
    public string Host { get; set; } = "127.0.0.1";
    public int Port { get; set; } = 6379;

    /// <summary>ACL user; with <see cref="Password"/> only, the <c>default</c> user.</summary>
    public string? User { get; set; }
    public string? Password { get; set; }
    public int Database { get; set; }

    public bool Ssl { get; set; }

    /// <summary>Name expected in the server certificate; default <see cref="Host"/>.</summary>
    public string? SslHost { get; set; }

    /// <summary>PEM file of the CA(s) that issue the server certificate; when set, only these are trusted.</summary>
    public string? SslCaFile { get; set; }

    /// <summary>2 (default) or 3: RESP3 is negotiated with HELLO.</summary>
    public int Protocol { get; set; } = 2;

    /// <summary>Sent with CLIENT SETNAME so operators can see who is connected; empty (<c>name=</c>) sends none.</summary>
    public string? ClientName { get; set; } = "ktzerotrust";

    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(5);
    public TimeSpan ReconnectMinDelay { get; set; } = TimeSpan.FromMilliseconds(100);
    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Subscriber keep-alive: a PING this often; no bytes for three intervals means the connection is dead.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>When true (default), connecting fails if the first attempt fails; when false, it keeps retrying in the background.</summary>
    public bool AbortOnConnectFail { get; set; } = true;

    public string Endpoint => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";

    public RedisOptions Clone() => (RedisOptions)MemberwiseClone();

    public static RedisOptions Parse(string configuration)
    {
        if (string.IsNullOrWhiteSpace(configuration))
        {
            throw new FormatException("The Redis configuration is empty; expected e.g. '127.0.0.1:6379,password=...'.");
        }

        var options = new RedisOptions();
        var endpointSeen = false;
        foreach (var raw in configuration.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = raw.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                if (endpointSeen)
                {
                    throw new FormatException($"Redis configuration: only one endpoint is supported ('{raw}').");
                }

                ParseEndpoint(raw, options);
                endpointSeen = true;
                continue;
            }

            var key = raw[..eq].Trim();
            var value = raw[(eq + 1)..].Trim();
            switch (key.ToUpperInvariant())
            {
                case "USER": options.User = value; break;
                case "PASSWORD": options.Password = value; break;
                case "SSL": options.Ssl = Bool(key, value); break;
                case "SSLHOST": options.SslHost = value; break;
                case "SSLCAFILE": options.SslCaFile = value; break;
                case "DEFAULTDATABASE": options.Database = Int(key, value, 0, 100_000); break;
                case "PROTOCOL": options.Protocol = value.ToUpperInvariant() switch { "2" or "RESP2" => 2, "3" or "RESP3" => 3, _ => throw new FormatException($"Redis configuration: protocol must be 2 or 3 (was '{value}').") }; break;
                case "NAME": options.ClientName = value.Length == 0 ? null : value; break;
                case "CONNECTTIMEOUT": options.ConnectTimeout = Millis(key, value); break;
                case "COMMANDTIMEOUT" or "SYNCTIMEOUT" or "ASYNCTIMEOUT": options.CommandTimeout = Millis(key, value); break;
                case "ABORTCONNECT": options.AbortOnConnectFail = Bool(key, value); break;
                default: throw new FormatException($"Redis configuration: unknown option '{key}'.");
            }
        }

        if (!endpointSeen)
        {
            throw new FormatException("Redis configuration: no host:port given.");
        }

        return options;
    }

    /// <summary>The configuration without secrets, for logs.</summary>
    public override string ToString() => $"{Endpoint} (db {Database}, RESP{Protocol}{(Ssl ? ", TLS" : "")}{(User is null ? "" : $", user {User}")}{(Password is null ? "" : ", password set")})";

    private static void ParseEndpoint(string text, RedisOptions options)
    {
        if (IPEndPoint.TryParse(text, out var ip) && (text.Contains(']', StringComparison.Ordinal) || !text.Contains("::", StringComparison.Ordinal)))
        {
            options.Host = ip.Address.ToString();
            options.Port = ip.Port == 0 ? 6379 : ip.Port;
            return;
        }

        var colon = text.LastIndexOf(':');
        options.Host = colon < 0 ? text : text[..colon];
        options.Port = colon < 0 ? 6379 : Int("port", text[(colon + 1)..], 1, 65535);
        if (options.Host.Length == 0)
        {
            throw new FormatException($"Redis configuration: '{text}' has no host.");
        }
    }

    private static bool Bool(string key, string value)
        => bool.TryParse(value, out var b) ? b : throw new FormatException($"Redis configuration: {key} must be true or false (was '{value}').");

    private static int Int(string key, string value, int min, int max)
        => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i >= min && i <= max
            ? i
            : throw new FormatException($"Redis configuration: {key} must be an integer from {min} to {max} (was '{value}').");

    private static TimeSpan Millis(string key, string value) => TimeSpan.FromMilliseconds(Int(key, value, 1, 3_600_000));
}
