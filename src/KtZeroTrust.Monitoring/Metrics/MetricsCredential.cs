using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace KtZeroTrust.Monitoring.Metrics;

/// <summary>Who may read <c>/metrics</c> (<c>ZeroTrust:Metrics</c>).</summary>
public sealed class MetricsOptions
{
    public const string SectionName = "ZeroTrust:Metrics";
    public const string DefaultFileName = "metrics-token";

    /// <summary>
    /// The metrics reader's bearer token, in a file (Prometheus reads the same kind of file: <c>authorization:
    /// credentials_file</c>; on Kubernetes a mounted secret). Default <c>{DataDirectory}/metrics-token</c>, made at the
    /// first start (mode 600) when missing. Read again when it changes, so a rotation needs no restart.
    /// </summary>
    public string? TokenFile { get; set; }

    public static MetricsOptions Read(IConfiguration configuration)
        => configuration.GetSection(SectionName).Get<MetricsOptions>() ?? new MetricsOptions();
}

/// <summary>
/// The metrics-reader credential: <c>Authorization: Bearer</c> with the token of <see cref="MetricsOptions.TokenFile"/>,
/// compared in constant time by its SHA-256. Pipeline counters name sinks, reasons and rates: not for anyone who can
/// reach the console listener.
/// </summary>
public sealed class MetricsCredential(string tokenFile) : IHostedService
{
    // A reference swapped whole: scrapes read it from several threads at once.
    private volatile CachedToken? _token;

    public string TokenFile => tokenFile;

    /// <summary>Makes the token file at start when there is none.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (File.Exists(tokenFile))
        {
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(tokenFile))!);
        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            await using var file = new FileStream(tokenFile, options);
            await file.WriteAsync(Encoding.UTF8.GetBytes(token + "\n"), cancellationToken);
        }
        catch (IOException) when (File.Exists(tokenFile))
        {
            // another process made it first
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Whether the request carries the token (false, never an exception, when the file is missing or unreadable: fail closed).</summary>
    public async Task<bool> AllowsAsync(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.Ordinal) || await HashAsync(request.HttpContext.RequestAborted) is not { } expected)
        {
            return false;
        }

        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim())), expected);
    }

    private async Task<byte[]?> HashAsync(CancellationToken cancellationToken)
    {
        try
        {
            var written = File.GetLastWriteTimeUtc(tokenFile);
            if (_token is { } cached && cached.Written == written)
            {
                return cached.Hash;
            }

            var token = (await File.ReadAllTextAsync(tokenFile, cancellationToken)).Trim();
            if (token.Length < 16)
            {
                return null; // an empty or trivial token file admits nobody
            }

            var hash = SHA256.HashData(Encoding.UTF8.GetBytes(token));
            _token = new CachedToken(written, hash);
            return hash;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private sealed record CachedToken(DateTime Written, byte[] Hash);
}
