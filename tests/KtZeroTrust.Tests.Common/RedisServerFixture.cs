using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace KtZeroTrust.Tests.Common;

/// <summary>
/// A real <c>redis-server</c> process on a free loopback port, started for a test class and killed afterwards. No
/// persistence. It can be stopped and started again on the same port (server-restart tests). Requires the Debian
/// package redis-server (./test.sh installs it).
/// </summary>
public class RedisServerFixture : IAsyncLifetime
{
    private readonly List<string> _stderr = [];
    private Process? _process;

    public int Port { get; private set; }

    public string Host => "127.0.0.1";

    /// <summary>The client configuration string for this server.</summary>
    public virtual string Configuration => $"{Host}:{Port}";

    /// <summary>Extra redis-server arguments (auth, TLS) for derived fixtures.</summary>
    protected virtual IEnumerable<string> ExtraArguments => [];

    /// <summary>Whether PING can be sent in clear on <see cref="Port"/> to see the server is up.</summary>
    protected virtual bool PlainTextPing => true;

    public virtual async ValueTask InitializeAsync()
    {
        Port = FreePorts.Next();
        await StartAsync();
    }

    public async Task StartAsync()
    {
        var executable = FindExecutable("redis-server")
            ?? throw new InvalidOperationException("redis-server is not installed; run ./test.sh (it installs it) or `apt-get install redis-server`.");
        var info = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--enable-debug-command", "local" }.Concat(PortArguments()).Concat(ExtraArguments))
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start.");
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"redis-server exited with code {process.ExitCode} before accepting connections: {string.Join(" | ", _stderr.TakeLast(5))}");
            }

            try
            {
                if (PlainTextPing ? await PingAsync() == "+PONG" : await CanConnectAsync())
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is SocketException or IOException)
            {
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("redis-server did not accept connections within 15 s.");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Kills the server (as a crash would); <see cref="StartAsync"/> brings it back on the same port, empty.</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        _process?.Dispose();
        _process = null;
    }

    /// <summary>Sends an inline PING and returns the first reply line.</summary>
    public async Task<string> PingAsync(CancellationToken cancellationToken = default)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(Host, Port, cancellationToken);
        var stream = client.GetStream();
        await stream.WriteAsync("PING\r\n"u8.ToArray(), cancellationToken);
        var buffer = new byte[64];
        var read = await stream.ReadAsync(buffer, cancellationToken);
        return Encoding.ASCII.GetString(buffer, 0, read).TrimEnd('\r', '\n');
    }

    public virtual async ValueTask DisposeAsync()
    {
        await StopAsync();
        GC.SuppressFinalize(this);
    }

    public static string? FindExecutable(string name)
        => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .Concat([Path.Combine("/usr/bin", name), Path.Combine("/usr/sbin", name)])
            .FirstOrDefault(File.Exists);

    protected virtual IEnumerable<string> PortArguments() => ["--port", Port.ToString(CultureInfo.InvariantCulture)];

    private async Task<bool> CanConnectAsync()
    {
        using var client = new TcpClient();
        await client.ConnectAsync(Host, Port);
        return true;
    }

    private void Keep(string? line)
    {
        if (line is not null)
        {
            lock (_stderr)
            {
                _stderr.Add(line);
            }
        }
    }
}

/// <summary>redis-server requiring a password for <c>default</c> and with an ACL user <c>gateway</c>.</summary>
public sealed class PasswordRedisServerFixture : RedisServerFixture
{
    public const string DefaultPassword = "default-secret-1";
    public const string AclUser = "gateway";
    public const string AclPassword = "gateway-secret-2";

    protected override bool PlainTextPing => false;

    protected override IEnumerable<string> ExtraArguments =>
        ["--requirepass", DefaultPassword, "--user", AclUser, "on", $">{AclPassword}", "~zt:*", "&*", "+@all"];
}

/// <summary>redis-server speaking TLS only, with a certificate from a throwaway CA written to a temp directory.</summary>
public sealed class TlsRedisServerFixture : RedisServerFixture
{
    private readonly TempDirectory _directory = new();

    public string CaFile => Path.Combine(_directory.Path, "ca.pem");

    public override string Configuration => $"{Host}:{Port},ssl=true,sslHost=localhost,sslCaFile={CaFile}";

    protected override bool PlainTextPing => false;

    protected override IEnumerable<string> ExtraArguments =>
    [
        "--tls-cert-file", Path.Combine(_directory.Path, "server.pem"),
        "--tls-key-file", Path.Combine(_directory.Path, "server.key.pem"),
        "--tls-ca-cert-file", CaFile,
        "--tls-auth-clients", "no",
    ];

    public override async ValueTask InitializeAsync()
    {
        var ca = TestCertificates.CreateCa("CN=Redis Test CA");
        File.WriteAllText(CaFile, ca.Certificate.ExportCertificatePem());
        var server = ca.IssueWithNewKey(new System.Security.Cryptography.X509Certificates.X500DistinguishedName("CN=localhost"), Pki.Certificates.CertificateUsage.ServerAuth, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), dnsNames: ["localhost"]);
        TestCertificates.WritePem(server, _directory.Path, "server");
        await base.InitializeAsync();
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _directory.Dispose();
    }

    protected override IEnumerable<string> PortArguments() => ["--port", "0", "--tls-port", Port.ToString(CultureInfo.InvariantCulture)];
}

/// <summary>redis-server with an append-only file fsynced on every write: a kill -9 loses nothing it acknowledged.</summary>
public sealed class PersistentRedisServerFixture : RedisServerFixture
{
    private readonly TempDirectory _directory = new("ktzt-redis-aof");

    protected override IEnumerable<string> ExtraArguments => ["--appendonly", "yes", "--appendfsync", "always", "--dir", _directory.Path];

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _directory.Dispose();
    }
}
