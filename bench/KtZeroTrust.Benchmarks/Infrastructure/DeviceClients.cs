using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace KtZeroTrust.Benchmarks.Infrastructure;

/// <summary>HTTP clients that present a device's LDevID and trust only the server's development TLS root (name checked).</summary>
internal static class DeviceClients
{
    /// <summary>Server certificates must chain to <paramref name="tlsRoot"/> alone (names are still checked).</summary>
    public static X509ChainPolicy TrustOnly(X509Certificate2 tlsRoot)
    {
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.Add(tlsRoot);
        return policy;
    }

    public static HttpClient Create(X509Certificate2 certificate, X509Certificate2 tlsRoot, TimeSpan? timeout = null)
    {
        return new HttpClient(new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = [certificate],
                LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate,
                CertificateChainPolicy = TrustOnly(tlsRoot),
            },
        })
        {
            Timeout = timeout ?? TimeSpan.FromSeconds(10),
        };
    }
}

/// <summary>One device hammering one gateway until it is denied (a non-200, or its connection cut); records when.</summary>
internal sealed class DenialProbe(string node, Uri deviceUri, X509Certificate2 certificate, X509Certificate2 tlsRoot) : IDisposable
{
    private readonly HttpClient _client = DeviceClients.Create(certificate, tlsRoot);

    public string Node { get; } = node;

    public TaskCompletionSource Allowed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>When the revocation started (a <see cref="Stopwatch"/> timestamp); 0 until then.</summary>
    public long Start { get; set; }

    public double DeniedAfterMs { get; private set; }

    public async Task RunAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            bool denied;
            try
            {
                using var response = await _client.GetAsync(deviceUri, stop);
                denied = response.StatusCode != HttpStatusCode.OK;
            }
            catch (HttpRequestException)
            {
                denied = true; // the connection was cut under the request
            }

            if (!denied)
            {
                Allowed.TrySetResult();
                continue;
            }

            if (Start != 0)
            {
                DeniedAfterMs = Stopwatch.GetElapsedTime(Start).TotalMilliseconds;
                return;
            }

            await Task.Delay(5, stop); // not yet allowed (first lookup racing the start): try again
        }

        throw new TimeoutException($"{Node} never denied the device.");
    }

    public void Dispose() => _client.Dispose();
}
