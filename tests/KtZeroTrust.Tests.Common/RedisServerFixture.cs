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

    /// <summary>
    /// Freezes the server (SIGSTOP): connections stay open and silent, as behind a dead link or a hung host: no reset,
    /// no error, nothing for TCP to notice. <see cref="ResumeAsync"/> thaws it (SIGCONT), data intact.
    /// </summary>
    public Task PauseAsync() => SignalAsync("-STOP");

    public Task ResumeAsync() => SignalAsync("-CONT");

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

    private async Task SignalAsync(string signal)
    {
        var pid = (_process ?? throw new InvalidOperationException("redis-server is not running.")).Id.ToString(CultureInfo.InvariantCulture);
        using var kill = Process.Start("kill", [signal, pid]);
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill {signal} {pid} failed.");
        }
    }

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

    /// <summary>The product's least-privilege user: exactly the ACL deploy/README.md documents.</summary>
    public const string ProductUser = "ktzt";
    public const string ProductPassword = "ktzt-secret-3";

    /// <summary>The rules of <see cref="ProductUser"/>, as deploy/README.md gives them.</summary>
    public static readonly string[] ProductRules =
    [
        "~zt:*", "&zt:*", "&__Booksleeve_MasterChanged", "-@all",
        "+hello", "+auth", "+ping", "+echo", "+info", "+client|setname", "+client|id", "+cluster|nodes", "+config|get",
        "+subscribe", "+unsubscribe", "+publish",
        "+get", "+set", "+del", "+getdel", "+hget", "+hset", "+pexpire",
        "+eval", "+evalsha", "+script|load", "+multi", "+exec", "+discard",
        "+xadd", "+xrange", "+xrevrange", "+xlen", "+xgroup|create", "+xreadgroup", "+xack",
    ];

    protected override IEnumerable<string> ExtraArguments =>
        ["--requirepass", DefaultPassword, "--user", AclUser, "on", $">{AclPassword}", "~zt:*", "&*", "+@all",
         "--user", ProductUser, "on", $">{ProductPassword}", .. ProductRules];
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

/// <summary>A redis-server with extra arguments of the caller's (e.g. <c>--replicaof</c>), on a port it chooses.</summary>
public sealed class ConfiguredRedisServer(params string[] arguments) : RedisServerFixture
{
    protected override IEnumerable<string> ExtraArguments => arguments;
}

/// <summary>
/// Redis with failover on loopback: a primary, a replica and three <c>redis-sentinel</c> processes watching them
/// (quorum 2, primary judged down after 1 s). <see cref="Configuration"/> is the product's Sentinel form.
/// </summary>
public sealed class RedisSentinelFixture : IAsyncLifetime
{
    public const string ServiceName = "ktzt";
    private readonly TempDirectory _directory = new("ktzt-sentinel");
    private readonly List<Process> _sentinels = [];

    public RedisServerFixture Primary { get; private set; } = null!;

    public RedisServerFixture Replica { get; private set; } = null!;

    public IReadOnlyList<int> SentinelPorts { get; private set; } = [];

    public string Configuration => string.Join(',', SentinelPorts.Select(p => $"127.0.0.1:{p}")) + $",serviceName={ServiceName}";

    public async ValueTask InitializeAsync()
    {
        try
        {
            await StartAllAsync();
        }
        catch
        {
            await DisposeAsync(); // a half-started set must not outlive the test (xunit disposes only what initialised)
            throw;
        }
    }

    private async Task StartAllAsync()
    {
        Primary = new ConfiguredRedisServer();
        await Primary.InitializeAsync();
        Replica = new ConfiguredRedisServer("--replicaof", "127.0.0.1", Primary.Port.ToString(CultureInfo.InvariantCulture));
        await Replica.InitializeAsync();
        await WaitForAsync(async () => (await RedisCliAsync(Replica.Port, "INFO", "replication")).Contains("master_link_status:up", StringComparison.Ordinal), "the replica to sync");

        var executable = FindExecutable("redis-sentinel") ?? throw new InvalidOperationException("redis-sentinel is not installed (Debian package redis-sentinel).");
        var ports = new List<int>();
        for (var i = 0; i < 3; i++)
        {
            var port = FreePorts.Next();
            ports.Add(port);
            var config = Path.Combine(_directory.Path, $"sentinel-{i}.conf");
            File.WriteAllText(config, $"""
                port {port}
                bind 127.0.0.1
                daemonize no
                sentinel monitor {ServiceName} 127.0.0.1 {Primary.Port} 2
                sentinel down-after-milliseconds {ServiceName} 1000
                sentinel failover-timeout {ServiceName} 5000
                sentinel parallel-syncs {ServiceName} 1

                """);
            var info = new ProcessStartInfo(executable) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            info.ArgumentList.Add(config);
            var process = Process.Start(info) ?? throw new InvalidOperationException("redis-sentinel did not start.");
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            _sentinels.Add(process);
        }

        SentinelPorts = ports;
        foreach (var port in ports)
        {
            await WaitForAsync(async () => (await RedisCliAsync(port, "SENTINEL", "replicas", ServiceName)).Contains(Replica.Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal), $"sentinel {port} to see the replica");
        }
    }

    /// <summary>The port of the primary the Sentinels currently name.</summary>
    public async Task<int> PrimaryPortAsync()
    {
        var reply = (await RedisCliAsync(SentinelPorts[0], "SENTINEL", "get-master-addr-by-name", ServiceName)).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return int.Parse(reply[^1], CultureInfo.InvariantCulture);
    }

    public static async Task<string> RedisCliAsync(int port, params string[] args)
    {
        var info = new ProcessStartInfo(FindExecutable("redis-cli") ?? throw new InvalidOperationException("redis-cli is not installed (Debian package redis-tools)."))
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture) }.Concat(args))
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return output;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var sentinel in _sentinels)
        {
            if (!sentinel.HasExited)
            {
                sentinel.Kill();
                await sentinel.WaitForExitAsync();
            }

            sentinel.Dispose();
        }

        if (Replica is not null)
        {
            await Replica.DisposeAsync();
        }

        if (Primary is not null)
        {
            await Primary.DisposeAsync();
        }

        _directory.Dispose();
    }

    private static string? FindExecutable(string name) => RedisServerFixture.FindExecutable(name);

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Waited 60 s for {what}.");
            }

            await Task.Delay(100);
        }
    }
}
