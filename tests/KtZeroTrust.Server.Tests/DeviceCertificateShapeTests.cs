using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Pki.Certificates;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// Certificates an attacker holding the dev operator CA's signature on something else could present: each is refused at
/// the handshake with its own reason, and the refusal is a decision.
/// </summary>
public sealed class DeviceCertificateShapeTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("ca-true-leaf", "certificate_policy_violation")]
    [InlineData("under-intermediate", "certificate_policy_violation")]
    [InlineData("not-yet-valid", "certificate_not_yet_valid")]
    [InlineData("expired", "certificate_expired")]
    public async Task Handshake_WithCertificateOfWrongShape_IsRefusedWithItsReason(string shape, string reason)
    {
        using var operatorCa = PemFiles.ReadCertificateWithKey(server.Layout.OperatorCaCertificate, server.Layout.OperatorCaKey);
        var serial = "FC-0004";
        var (leaf, intermediate) = Build(shape, operatorCa, serial);
        using var _ = leaf;
        using var __ = intermediate;

        var handshake = await TryHandshakeAsync(leaf, intermediate);

        Assert.False(handshake, "the gateway accepted the handshake");
        var hash = KtZeroTrust.Core.Certificates.CertificateHash.Of(leaf).ToString();
        var decision = await server.DecisionAsync(d => d.Text("route") == "tls-handshake" && d.Text("certificateSha256") == hash, "the handshake refusal for " + shape);
        Assert.Equal(reason, decision.Text("reason"));
        Assert.Equal("deny", decision.Text("outcome"));
    }

    private static (X509Certificate2 Leaf, X509Certificate2? Intermediate) Build(string shape, X509Certificate2 operatorCa, string serial)
    {
        var now = DateTimeOffset.UtcNow;
        switch (shape)
        {
            case "ca-true-leaf":
                return (Issue(operatorCa, serial, now.AddMinutes(-5), now.AddHours(8), isCa: true), null);
            case "not-yet-valid":
                return (Issue(operatorCa, serial, now.AddHours(2), now.AddHours(10), isCa: false), null);
            case "expired":
                return (Issue(operatorCa, serial, now.AddHours(-10), now.AddHours(-2), isCa: false), null);
            default:
                using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
                {
                    var request = new CertificateRequest("CN=Regional Sub-CA, O=KtZeroTrust Operator", key, HashAlgorithmName.SHA256);
                    request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
                    request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
                    request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
                    request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(operatorCa, true, false));
                    using var signed = request.Create(operatorCa, now.AddMinutes(-5), now.AddDays(30), [9, 9, 9, 1]);
                    var intermediate = signed.CopyWithPrivateKey(key);
                    return (Issue(intermediate, serial, now.AddMinutes(-5), now.AddHours(8), isCa: false), intermediate);
                }
        }
    }

    private static X509Certificate2 Issue(X509Certificate2 issuer, string serial, DateTimeOffset notBefore, DateTimeOffset notAfter, bool isCa)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(DeviceCertificates.Subject(serial, "KtZeroTrust Operator"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(isCa, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | (isCa ? X509KeyUsageFlags.KeyCertSign : 0), true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(DeviceCertificates.DeviceUri(serial));
        request.CertificateExtensions.Add(san.Build());
        // Signed through a generator: CertificateRequest.Create(issuer, ...) would refuse a window outside the issuer's.
        using var issuerKey = issuer.GetECDsaPrivateKey()!;
        using var signed = request.Create(issuer.SubjectName, X509SignatureGenerator.CreateForECDsa(issuerKey), notBefore, notAfter, RandomNumberGenerator.GetBytes(12));
        return signed.CopyWithPrivateKey(key);
    }

    /// <summary>True when the gateway completed the handshake and answered a request on it.</summary>
    private async Task<bool> TryHandshakeAsync(X509Certificate2 leaf, X509Certificate2? intermediate)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", server.DevicePort, Ct);
        await using var tls = new SslStream(tcp.GetStream());
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                // The client sends its chain (leaf + intermediate), as a unit with a sub-CA certificate would.
                ClientCertificateContext = SslStreamCertificateContext.Create(leaf, intermediate is null ? null : [intermediate], offline: true),
                ApplicationProtocols = [SslApplicationProtocol.Http11],
                RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is X509Certificate2 c && TrustPolicies.ChainsTo(c, server.TlsRoot),
            }, Ct);
            await tls.WriteAsync("GET /femto/status HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray(), Ct);
            var buffer = new byte[64];
            return await tls.ReadAsync(buffer, Ct) > 0; // TLS 1.3: a refused client certificate shows on the first read
        }
        catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException)
        {
            return false;
        }
    }
}
