using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace KtZeroTrust.Benchmarks.Infrastructure;

/// <summary>
/// A KtZeroTrust server process (the Release build) on its own loopback ports and data directory, its output in
/// <c>server.log</c> there; killed with its children on dispose. Ports: device, enrollment, user, console, demo upstream.
/// </summary>
internal sealed class ServerProcess : IDisposable
{
    private readonly Process _process;

    private ServerProcess(Process process, string name, int[] ports)
    {
        _process = process;
        Name = name;
        Ports = ports;
        DeviceUri = new Uri($"https://127.0.0.1:{ports[0]}/femto/status");
    }

    public string Name { get; }

    public int[] Ports { get; }

    public Uri DeviceUri { get; }

    /// <summary>Starts the server with its listeners on free loopback ports, then <paramref name="arguments"/>.</summary>
    public static ServerProcess Start(string serverDll, string dataDirectory, string name, IEnumerable<string> arguments)
    {
        var ports = FreePorts(5);
        Directory.CreateDirectory(dataDirectory);
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = dataDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] listeners =
        [
            serverDll, $"--ZeroTrust:DataDirectory={dataDirectory}", $"--ZeroTrust:Node={name}",
            "--ZeroTrust:Listeners:Device:Address=127.0.0.1", $"--ZeroTrust:Listeners:Device:Port={ports[0]}",
            "--ZeroTrust:Listeners:Enrollment:Address=127.0.0.1", $"--ZeroTrust:Listeners:Enrollment:Port={ports[1]}",
            "--ZeroTrust:Listeners:User:Address=127.0.0.1", $"--ZeroTrust:Listeners:User:Port={ports[2]}",
            "--ZeroTrust:Listeners:Console:Address=127.0.0.1", $"--ZeroTrust:Listeners:Console:Port={ports[3]}",
            $"--ZeroTrust:DemoUpstream:Port={ports[4]}",
            $"--ReverseProxy:Clusters:femto-management:Destinations:demo:Address=http://127.0.0.1:{ports[4]}/",
            "--Logging:LogLevel:Default=Warning",
        ];
        foreach (var arg in listeners.Concat(arguments))
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"{name} did not start.");
        var log = new StreamWriter(Path.Combine(dataDirectory, "server.log")) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new ServerProcess(process, name, ports);
    }

    public async Task WaitListeningAsync(int port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with code {_process.ExitCode}; see its server.log.");
            }

            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }

        throw new TimeoutException($"{Name} did not listen on {port.ToString(CultureInfo.InvariantCulture)} within 60 s.");
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    private static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        listeners.ForEach(l => l.Start());
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        listeners.ForEach(l => l.Stop());
        return ports;
    }
}
