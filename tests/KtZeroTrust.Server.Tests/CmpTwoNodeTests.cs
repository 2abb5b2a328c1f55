using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Cli.Simulation;
using KtZeroTrust.Pki.Certificates;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// Two attestation nodes sharing a real Redis and a registry: a CMP ir answered by one node is confirmed on the other
/// (the unconfirmed certificate waits in Redis, not in a node's memory), and a Redis that does not answer gets the
/// unit a CMP error with <c>dependency_unavailable</c>, never a certificate.
/// </summary>
public sealed class CmpTwoNodeTests(RedisGatewayFixture pair) : IClassFixture<RedisGatewayFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AnIrAnsweredByOneNode_IsConfirmedOnTheOther_AndARedisThatDoesNotAnswerIssuesNothing()
    {
        using var factory = pair.NodeA.FactoryCertificate("FC-0005");
        using (var unit = new EnrollmentClient(pair.NodeA, factory))
        {
            await unit.AttestAsync("FC-0005", factory, Ct); // on node A; the nonce lives in Redis
        }

        // The unit's two exchanges land on different nodes, as a load balancer without affinity would send them.
        using var http = new HttpClient(new AlternatingNodes([pair.NodeA.EnrollmentPort, pair.NodeB.EnrollmentPort], pair.NodeA.TlsRoot));
        using var operatorCa = PemFiles.ReadCertificate(pair.NodeA.Layout.OperatorCaCertificate);
        using var operatorKey = operatorCa.GetECDsaPublicKey()!;
        var cmp = new CmpEnrollment(http, pair.NodeA.EnrollmentUri("/.well-known/cmp"), operatorCa, operatorKey);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

        var (result, certificate) = await cmp.EnrollAsync("FC-0005", factory, key, Ct);

        Assert.True(result.Ok, $"{result.Status} {result.Reason}");
        using (certificate)
        {
            Assert.Contains(await pair.NodeB.OpenRegistry().GetCertificatesAsync("FC-0005", Ct), c => c.Sha256 == Core.Certificates.CertificateHash.Of(certificate!).ToString() && c.RevokedAt is null);
        }

        var confirmedOnB = await pair.NodeB.DecisionAsync(d => d.Text("route") == "cmp:certConf" && d.Text("subject") == "FC-0005" && d.Text("reason") == "allowed", "the certConf's decision on node B");
        Assert.Contains("confirmed and recorded", confirmedOnB.Text("detail"), StringComparison.Ordinal);

        // Attested again, then Redis stops answering before the ir: a CMP error the unit can act on, nothing issued.
        using (var unit = new EnrollmentClient(pair.NodeA, factory))
        {
            await unit.AttestAsync("FC-0005", factory, Ct);
        }

        var before = (await pair.NodeA.OpenRegistry().GetCertificatesAsync("FC-0005", Ct)).Count;
        await pair.Redis.PauseAsync();
        try
        {
            using var again = new HttpClient(new AlternatingNodes([pair.NodeA.EnrollmentPort], pair.NodeA.TlsRoot));
            using var key2 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var (refused, none) = await new CmpEnrollment(again, pair.NodeA.EnrollmentUri("/.well-known/cmp"), operatorCa, operatorKey).EnrollAsync("FC-0005", factory, key2, Ct);
            Assert.Null(none);
            Assert.Equal("dependency_unavailable", refused.Reason);
        }
        finally
        {
            await pair.Redis.ResumeAsync();
        }

        Assert.Equal(before, (await pair.NodeA.OpenRegistry().GetCertificatesAsync("FC-0005", Ct)).Count);
    }

    /// <summary>Sends the n-th request to the n-th port (the last one from then on), trusting only the dev TLS root.</summary>
    private sealed class AlternatingNodes(int[] ports, System.Security.Cryptography.X509Certificates.X509Certificate2 tlsRoot) : DelegatingHandler(new SocketsHttpHandler
    {
        SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => c is System.Security.Cryptography.X509Certificates.X509Certificate2 s && TrustPolicies.ChainsTo(s, tlsRoot) },
    })
    {
        private int _sent;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.RequestUri = new UriBuilder(request.RequestUri!) { Port = ports[Math.Min(_sent++, ports.Length - 1)] }.Uri;
            return base.SendAsync(request, cancellationToken);
        }
    }
}
