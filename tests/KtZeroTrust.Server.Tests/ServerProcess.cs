using System.Diagnostics;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>The built server binary run as its own process, ready once a sample unit gets a 200.</summary>
internal sealed class ServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly string _pki;
    private readonly TlsRootHolder _root;

    private ServerProcess(Process process, string pki)
    {
        _process = process;
        _pki = pki;
        _root = new TlsRootHolder(pki);
    }

    /// <summary>A PKI directory with the sample manifest and reference values: the first start generates the rest.</summary>
    public static string NewPkiDirectory(TempDirectory temp)
    {
        ArgumentNullException.ThrowIfNull(temp);
        var pki = temp.Combine("pki");
        Directory.CreateDirectory(pki);
        File.Copy(Path.Combine(RepositoryPaths.Root, "certs-dev", "manifest.json"), Path.Combine(pki, "manifest.json"));
        File.Copy(Path.Combine(RepositoryPaths.Root, "certs-dev", "reference.json"), Path.Combine(pki, "reference.json"));
        return pki;
    }

    public static async Task<ServerProcess> StartAsync(string[] args, string workingDirectory, int devicePort, string pki)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = workingDirectory };
        info.ArgumentList.Add(RepositoryPaths.ServerDll);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ServerProcess(process, pki);
        try
        {
            await Eventually.Until(async () =>
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"the server exited with {process.ExitCode}");
                }

                if (!File.Exists(new DevPkiLayout(pki).LDevIdKey("FC-0001")))
                {
                    return 0; // the first start is still writing the development PKI
                }

                using var client = server.DeviceClient();
                using var response = await client.GetAsync(new Uri($"https://127.0.0.1:{devicePort}/healthz-probe"), TestContext.Current.CancellationToken);
                return (int)response.StatusCode;
            }, status => status > 0, "the server to listen", TimeSpan.FromSeconds(60));
        }
        catch
        {
            server.Dispose();
            throw;
        }

        return server;
    }

    public HttpClient DeviceClient()
    {
        var layout = new DevPkiLayout(_pki);
        var certificate = PemFiles.ReadCertificateWithKey(layout.LDevIdCertificate("FC-0001"), layout.LDevIdKey("FC-0001"));
        var handler = new SocketsHttpHandler
        {
            SslOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                ClientCertificates = [certificate],
                RemoteCertificateValidationCallback = (_, c, _, _) => c is System.Security.Cryptography.X509Certificates.X509Certificate2 s && TrustPolicies.ChainsTo(s, _root.Root),
            },
        };
        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>The process id (its loaded files are in /proc/{id}/maps).</summary>
    public int Id => _process.Id;

    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
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
}

/// <summary>The development TLS root, read once the server has generated it.</summary>
internal sealed class TlsRootHolder(string pki)
{
    private System.Security.Cryptography.X509Certificates.X509Certificate2? _root;

    public System.Security.Cryptography.X509Certificates.X509Certificate2 Root => _root ??= PemFiles.ReadCertificate(new DevPkiLayout(pki).TlsRootCertificate);
}
