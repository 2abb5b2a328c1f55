using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace KtZeroTrust.Tests.Common;

/// <summary>
/// Starts a real <c>redis-server</c> process on a free loopback port for a test class, and stops it afterwards.
/// No persistence; the process dies with the fixture. Requires the Debian package redis-server (./test.sh installs it).
/// </summary>
public sealed class RedisServerFixture : IAsyncLifetime
{
    private Process? _process;

    public int Port { get; private set; }

    public string Host => "127.0.0.1";

    public async ValueTask InitializeAsync()
    {
        var executable = FindExecutable("redis-server")
            ?? throw new InvalidOperationException("redis-server is not installed; run ./test.sh (it installs it) or `apt-get install redis-server`.");
        Port = FreePorts.Next();
        var info = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--bind", "127.0.0.1", "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--save", "", "--appendonly", "no", "--daemonize", "no" })
        {
            info.ArgumentList.Add(arg);
        }

        _process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start.");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"redis-server exited with code {_process.ExitCode} before accepting connections.");
            }

            try
            {
                if (await PingAsync(timeout.Token) == "+PONG")
                {
                    return;
                }
            }
            catch (SocketException)
            {
            }

            await Task.Delay(50, timeout.Token);
        }
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

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process?.Dispose();
    }

    public static string? FindExecutable(string name)
        => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .Concat([Path.Combine("/usr/bin", name), Path.Combine("/usr/sbin", name)])
            .FirstOrDefault(File.Exists);
}
