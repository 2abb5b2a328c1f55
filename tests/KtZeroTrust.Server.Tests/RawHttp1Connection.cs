using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using KtZeroTrust.Pki.Certificates;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// One HTTP/1.1 keep-alive connection over mTLS, by hand, so a test can see the server close it (which HttpClient's
/// pool would hide by quietly opening another).
/// </summary>
public sealed class RawHttp1Connection : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly SslStream _tls;

    private RawHttp1Connection(TcpClient tcp, SslStream tls)
    {
        _tcp = tcp;
        _tls = tls;
    }

    public int LocalPort => ((System.Net.IPEndPoint)_tcp.Client.LocalEndPoint!).Port;

    public static async Task<RawHttp1Connection> OpenAsync(int port, X509Certificate2 clientCertificate, X509Certificate2 tlsRoot, CancellationToken cancellationToken)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port, cancellationToken);
        var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ClientCertificates = [clientCertificate],
            ApplicationProtocols = [SslApplicationProtocol.Http11],
            RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is X509Certificate2 c && TrustPolicies.ChainsTo(c, tlsRoot),
        }, cancellationToken);
        return new RawHttp1Connection(tcp, tls);
    }

    /// <summary>Sends a GET and reads the whole response (status line, headers, Content-Length body).</summary>
    public async Task<(int Status, string Body)> GetAsync(string path, CancellationToken cancellationToken)
    {
        await _tls.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"), cancellationToken);
        var buffer = new List<byte>();
        var chunk = new byte[8192];
        while (true)
        {
            var text = Encoding.ASCII.GetString([.. buffer]);
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0)
            {
                var headers = text[..end].Split("\r\n");
                var status = int.Parse(headers[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
                var chunked = headers.Any(h => h.StartsWith("Transfer-Encoding:", StringComparison.OrdinalIgnoreCase) && h.Contains("chunked", StringComparison.OrdinalIgnoreCase));
                if (chunked && text.EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal))
                {
                    return (status, text[(end + 4)..]); // chunk framing left in: the tests only look at the status
                }

                var length = headers.Select(h => h.Split(':', 2)).Where(h => h.Length == 2 && h[0].Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                    .Select(h => int.Parse(h[1].Trim(), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
                if (!chunked && buffer.Count >= end + 4 + length)
                {
                    return (status, Encoding.UTF8.GetString([.. buffer.Skip(end + 4).Take(length)]));
                }
            }

            var read = await _tls.ReadAsync(chunk, cancellationToken);
            if (read == 0)
            {
                throw new IOException("The server closed the connection mid-response.");
            }

            buffer.AddRange(chunk.AsSpan(0, read));
        }
    }

    /// <summary>Waits, sending nothing, until the server closes the connection; true when it did.</summary>
    public async Task<bool> ClosedByServerAsync(TimeSpan within, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(within);
        try
        {
            var buffer = new byte[4096];
            var read = await _tls.ReadAsync(buffer, timeout.Token);
            return read == 0 ? true : throw new InvalidOperationException("Unexpected bytes from the server: " + Encoding.ASCII.GetString(buffer, 0, read));
        }
        catch (IOException)
        {
            return true; // reset rather than a clean close: closed all the same
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _tls.DisposeAsync();
        _tcp.Dispose();
    }
}
