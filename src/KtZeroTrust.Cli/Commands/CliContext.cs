using System.CommandLine;
using System.Text.Json;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Registry;
using KtZeroTrust.Registry.Redis;
using KtZeroTrust.Registry.Sqlite;

namespace KtZeroTrust.Cli.Commands;

/// <summary>Exit codes of ztctl. Scripts rely on them; never renumber.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int Usage = 1;
    public const int Failed = 2;
    public const int NotFound = 3;
    public const int Refused = 4;
}

/// <summary>Options shared by every command, and the helpers commands use to reach state and print.</summary>
internal sealed class CliContext : IAsyncDisposable
{
    private KtZeroTrust.Redis.RedisConnection? _redis;

    public static readonly Option<string> DataDir = new("--data-dir")
    {
        Description = "Server data directory (registry, decision log). Default: $ZT_DATA_DIR or ./data",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ZT_DATA_DIR") ?? "data",
    };

    public static readonly Option<string> PkiDir = new("--pki-dir")
    {
        Description = "PKI directory. Default: $ZT_PKI_DIR or ./certs-dev",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ZT_PKI_DIR") ?? "certs-dev",
    };

    public static readonly Option<string?> Redis = new("--redis")
    {
        Description = "Redis of the gateway fleet (host:port,password=...): registry changes are written through and pushed to every node at once. Default: $ZT_REDIS; none: nodes see changes at their next registry poll",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ZT_REDIS"),
    };

    public static readonly Option<string?> Postgres = new("--postgres")
    {
        Description = "PostgreSQL registry (Npgsql connection string) instead of the SQLite file in --data-dir. Default: $ZT_POSTGRES",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ZT_POSTGRES"),
    };

    public static readonly Option<string?> Server = new("--server")
    {
        Description = "Act through the server's admin API (console listener, e.g. https://localhost:9444) instead of the registry files: authenticated, role-checked and audited. Default: $ZT_SERVER",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ZT_SERVER"),
    };

    public static readonly Option<string?> Token = new("--token")
    {
        Description = "Admin API session token (ztctl console login). Default: $ZT_TOKEN",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ZT_TOKEN"),
    };

    public static readonly Option<string?> ServerCa = new("--server-ca")
    {
        Description = "CA certificate (PEM) the server's TLS certificate must chain to. Default: $ZT_SERVER_CA, else <pki-dir>/tls-root.pem",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ZT_SERVER_CA"),
    };

    public static readonly Option<bool> Json = new("--json")
    {
        Description = "Print JSON for scripts",
        Recursive = true,
    };

    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    private CliContext(ParseResult parseResult)
    {
        ParseResult = parseResult;
        Out = parseResult.InvocationConfiguration.Output;
        Error = parseResult.InvocationConfiguration.Error;
        DataDirectory = Path.GetFullPath(parseResult.GetValue(DataDir)!);
        PkiDirectory = Path.GetFullPath(parseResult.GetValue(PkiDir)!);
        AsJson = parseResult.GetValue(Json);
        RedisConfiguration = parseResult.GetValue(Redis);
        PostgresConnectionString = parseResult.GetValue(Postgres);
    }

    public string? PostgresConnectionString { get; }

    /// <summary>The admin API client when <c>--server</c> is given; null otherwise.</summary>
    public AdminApiClient? AdminApi()
        => ParseResult.GetValue(Server) is { Length: > 0 } server
            ? new AdminApiClient(server, ParseResult.GetValue(Token), ParseResult.GetValue(ServerCa) ?? Path.Combine(PkiDirectory, "tls-root.pem"))
            : null;

    public string? RedisConfiguration { get; }

    public ParseResult ParseResult { get; }
    public TextWriter Out { get; }
    public TextWriter Error { get; }
    public string DataDirectory { get; }
    public string PkiDirectory { get; }
    public bool AsJson { get; }

    public static CliContext From(ParseResult parseResult) => new(parseResult);

    /// <summary>The operator running the command, recorded as the actor of every change.</summary>
    public static string Actor => $"ztctl:{Environment.UserName}";

    /// <summary>The registry; with <c>--redis</c>, one whose every write goes through to Redis and is pushed to the gateways.</summary>
    /// <summary>The registry's SQL store itself (SQLite or PostgreSQL), for maintenance that is not a registry operation.</summary>
    public async Task<KtZeroTrust.Registry.Sql.SqlDeviceRegistry> OpenStoreAsync(CancellationToken cancellationToken)
        => string.IsNullOrWhiteSpace(PostgresConnectionString)
            ? new SqliteDeviceRegistry(Path.Combine(DataDirectory, RegistryOptions.DefaultFileName), TimeProvider.System)
            : await KtZeroTrust.Registry.Postgres.PostgresDeviceRegistry.ConnectAsync(PostgresConnectionString, TimeProvider.System, cancellationToken);

    public async Task<IDeviceRegistry> OpenRegistryAsync(CancellationToken cancellationToken)
    {
        IDeviceRegistry registry = await OpenStoreAsync(cancellationToken);
        if (string.IsNullOrWhiteSpace(RedisConfiguration))
        {
            return registry;
        }

        // The registry is the source of truth: it commits even when Redis is away (the connection never aborts).
        var synchronizer = new RegistryRedisSynchronizer(registry, new RedisAllowListStore(OpenRedis()), TimeProvider.System);
        return new WriteThroughDeviceRegistry(registry, synchronizer, ex => Error.WriteLine(
            $"warning: the registry is updated, but pushing the change to Redis failed ({ex.Message}); gateway nodes pick it up when a node with registry access next synchronises Redis."));
    }

    /// <summary>The <c>--redis</c> connection, opened on first use; a command on it fails at once while Redis is unreachable.</summary>
    public KtZeroTrust.Redis.RedisConnection OpenRedis()
        => _redis ??= new KtZeroTrust.Redis.RedisConnection(KtZeroTrust.Redis.RedisConfiguration.Parse(
            RedisConfiguration ?? throw new InvalidOperationException("--redis is not set."), "ztctl"));

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
    }

    public void WriteJson<T>(T value) => Out.WriteLine(JsonSerializer.Serialize(value, JsonOptions));

    /// <summary>Runs a command body, turning the product's own exceptions into a one-line error and an exit code.</summary>
    public static Func<ParseResult, CancellationToken, Task<int>> Run(Func<CliContext, CancellationToken, Task<int>> body)
        => async (parseResult, cancellationToken) =>
        {
            await using var context = new CliContext(parseResult);
            try
            {
                return await body(context, cancellationToken);
            }
            catch (AdminApiException ex)
            {
                await context.Error.WriteLineAsync($"error: {ex.Message}");
                return ex.ExitCode;
            }
            catch (RegistryException ex)
            {
                await context.Error.WriteLineAsync($"error {ex.Code}: {ex.Message}");
                return ex.Code == RegistryException.DeviceNotFound ? ExitCodes.NotFound : ExitCodes.Refused;
            }
            catch (Pki.Certificates.PkiException ex)
            {
                await context.Error.WriteLineAsync($"error {ex.Code}: {ex.Message}");
                return ex.Code == Pki.Certificates.PkiException.MissingFile ? ExitCodes.NotFound : ExitCodes.Refused;
            }
            catch (FormatException ex)
            {
                await context.Error.WriteLineAsync($"error: {ex.Message}");
                return ExitCodes.Usage;
            }
            catch (Exception ex) when (KtZeroTrust.Redis.RedisFailure.Is(ex) || ex is System.Net.Sockets.SocketException or HttpRequestException)
            {
                // Something we depend on is unreachable: an operational failure (2), not a usage error (1).
                await context.Error.WriteLineAsync($"error: cannot reach the server ({(context.RedisConfiguration is { Length: > 0 } redis ? "Redis " + redis.Split(',')[0] : "admin API")}): {ex.Message}");
                return ExitCodes.Failed;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Data.Common.DbException or InvalidOperationException)
            {
                await context.Error.WriteLineAsync($"error: {ex.Message}");
                return ExitCodes.Failed;
            }
        };
}
