using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using KtZeroTrust.Pki.Certificates;

namespace KtZeroTrust.Server.Tests;

/// <summary>Raw bytes over TLS to a listener, the way an attacker's script sends them; reads until the server closes.</summary>
internal static class RawTls
{
    /// <summary>Sends <paramref name="request"/>, optionally stalls, and returns everything the server sent before it closed.</summary>
    public static async Task<string> ExchangeAsync(int port, X509Certificate2 tlsRoot, string request, X509Certificate2? clientCertificate = null, CancellationToken cancellationToken = default)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port, cancellationToken);
        await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            ApplicationProtocols = [SslApplicationProtocol.Http11],
            RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is X509Certificate2 c && TrustPolicies.ChainsTo(c, tlsRoot),
        }, cancellationToken);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(request), cancellationToken);
        await tls.FlushAsync(cancellationToken);

        // Bounded: a server that never answers fails the test instead of hanging it.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        var received = new MemoryStream();
        var buffer = new byte[8192];
        try
        {
            int read;
            while ((read = await tls.ReadAsync(buffer, timeout.Token)) > 0)
            {
                received.Write(buffer, 0, read);
                if (IsComplete(received))
                {
                    break;
                }
            }
        }
        catch (IOException)
        {
            // reset after the answer: what arrived is the answer
        }

        return Encoding.ASCII.GetString(received.ToArray());
    }

    public static int Status(string response) => int.Parse(response.Split(' ', 3)[1], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A whole response: Content-Length satisfied, or the last chunk seen.</summary>
    private static bool IsComplete(MemoryStream received)
    {
        var text = Encoding.ASCII.GetString(received.ToArray());
        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (end < 0)
        {
            return false;
        }

        var headers = text[..end];
        var length = headers.Split("\r\n").FirstOrDefault(h => h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
        if (length is not null)
        {
            return text.Length - end - 4 >= int.Parse(length["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }

        return text.EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal);
    }
}
