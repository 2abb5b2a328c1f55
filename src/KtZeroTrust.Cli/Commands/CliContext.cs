using System.CommandLine;
using System.Text.Json;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Registry;
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
internal sealed class CliContext
{
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
    }

    public ParseResult ParseResult { get; }
    public TextWriter Out { get; }
    public TextWriter Error { get; }
    public string DataDirectory { get; }
    public string PkiDirectory { get; }
    public bool AsJson { get; }

    public static CliContext From(ParseResult parseResult) => new(parseResult);

    /// <summary>The operator running the command, recorded as the actor of every change.</summary>
    public static string Actor => $"ztctl:{Environment.UserName}";

    public IDeviceRegistry OpenRegistry()
        => new SqliteDeviceRegistry(Path.Combine(DataDirectory, RegistryOptions.DefaultFileName), TimeProvider.System);

    public void WriteJson<T>(T value) => Out.WriteLine(JsonSerializer.Serialize(value, JsonOptions));

    /// <summary>Runs a command body, turning the product's own exceptions into a one-line error and an exit code.</summary>
    public static Func<ParseResult, CancellationToken, Task<int>> Run(Func<CliContext, CancellationToken, Task<int>> body)
        => async (parseResult, cancellationToken) =>
        {
            var context = new CliContext(parseResult);
            try
            {
                return await body(context, cancellationToken);
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
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException or InvalidOperationException)
            {
                await context.Error.WriteLineAsync($"error: {ex.Message}");
                return ExitCodes.Failed;
            }
        };
}
