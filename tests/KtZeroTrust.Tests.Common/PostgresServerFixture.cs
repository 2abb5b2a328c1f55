using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Xunit;

namespace KtZeroTrust.Tests.Common;

/// <summary>
/// A throwaway PostgreSQL cluster: <c>initdb</c> in a temp directory, <c>postgres</c> on a free loopback port, killed
/// and deleted afterwards. PostgreSQL refuses to run as root, so as root it runs as the Debian <c>postgres</c> user.
/// Requires the Debian package postgresql (./test.sh installs it).
/// </summary>
public sealed class PostgresServerFixture : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"ktzt-pg-{Guid.NewGuid():N}");
    private Process? _server;

    public int Port { get; private set; }

    public string ConnectionString(string database) => $"Host=127.0.0.1;Port={Port};Username=zt;Database={database};Pooling=true;Timeout=10";

    public async ValueTask InitializeAsync()
    {
        var bin = Directory.GetDirectories("/usr/lib/postgresql").OrderByDescending(d => d).Select(d => Path.Combine(d, "bin")).FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")))
            ?? throw new InvalidOperationException("PostgreSQL is not installed; run ./test.sh (it installs the Debian package postgresql).");
        Directory.CreateDirectory(_root);
        var data = Path.Combine(_root, "data");
        var asRoot = Environment.UserName == "root";
        if (asRoot)
        {
            await RunAsync("chown", ["postgres:postgres", _root]);
        }

        await RunAsync(Path.Combine(bin, "initdb"), ["-D", data, "-U", "zt", "--auth=trust", "--no-sync", "-E", "UTF8"], asRoot);
        Port = FreePorts.Next();
        _server = Start(Path.Combine(bin, "postgres"),
            ["-D", data, "-p", Port.ToString(CultureInfo.InvariantCulture), "-k", _root, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"], asRoot);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
                await connection.OpenAsync();
                return;
            }
            catch (NpgsqlException) when (DateTime.UtcNow < deadline && !_server.HasExited)
            {
                await Task.Delay(100);
            }
        }
    }

    /// <summary>A new empty database (one per test, so tests never see each other's rows).</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = "t" + Guid.NewGuid().ToString("N");
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand($"CREATE DATABASE {name};", connection);
        await cmd.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_server is { HasExited: false })
        {
            _server.Kill(entireProcessTree: true);
            await _server.WaitForExitAsync();
        }

        _server?.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static Process Start(string file, string[] args, bool asPostgres)
    {
        var info = new ProcessStartInfo(asPostgres ? "runuser" : file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in asPostgres ? ["-u", "postgres", "--", file, .. args] : args)
        {
            info.ArgumentList.Add(a);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"{file} did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task RunAsync(string file, string[] args, bool asPostgres = false)
    {
        using var process = Start(file, args, asPostgres);
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}.");
        }
    }
}
