using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Cli.Simulation;
using KtZeroTrust.Pki.Certificates;
using Microsoft.Extensions.DependencyInjection;

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

        var (result, certificate) = await cmp.EnrollAsync("FC-0005", factory, key, NoWaiting, Ct);

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
            var (refused, none) = await new CmpEnrollment(again, pair.NodeA.EnrollmentUri("/.well-known/cmp"), operatorCa, operatorKey).EnrollAsync("FC-0005", factory, key2, NoWaiting, Ct);
            Assert.Null(none);
            Assert.Equal("dependency_unavailable", refused.Reason);
        }
        finally
        {
            await pair.Redis.ResumeAsync();
        }

        Assert.Equal(before, (await pair.NodeA.OpenRegistry().GetCertificatesAsync("FC-0005", Ct)).Count);
    }

    [Fact]
    public async Task AnIrHeldByAFullNode_IsServedWhenTheUnitPollsTheOtherNode()
    {
        const string serial = "FC-0006";
        using var factory = pair.NodeA.FactoryCertificate(serial);
        using (var unit = new EnrollmentClient(pair.NodeA, factory))
        {
            await unit.AttestAsync(serial, factory, Ct);
        }

        // Node A's room for loopback's prefix taken: its ir is held (in Redis) and answered waiting; the pollReq reaches B.
        var admission = pair.NodeA.Services.GetRequiredService<KtZeroTrust.Attestation.Admission.EnrollmentAdmission>();
        var leases = new List<IDisposable>();
        while (admission.TryEnter(System.Net.IPAddress.Loopback) is { } lease)
        {
            leases.Add(lease);
        }

        using var http = new HttpClient(new AlternatingNodes([pair.NodeA.EnrollmentPort, pair.NodeB.EnrollmentPort], pair.NodeA.TlsRoot));
        using var operatorCa = PemFiles.ReadCertificate(pair.NodeA.Layout.OperatorCaCertificate);
        using var operatorKey = operatorCa.GetECDsaPublicKey()!;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        (StepResult Result, X509Certificate2? Certificate) enrolled;
        try
        {
            enrolled = await new CmpEnrollment(http, pair.NodeA.EnrollmentUri("/.well-known/cmp"), operatorCa, operatorKey).EnrollAsync(serial, factory, key, NoWaiting, Ct);
        }
        finally
        {
            leases.ForEach(l => l.Dispose());
        }

        Assert.True(enrolled.Result.Ok, $"{enrolled.Result.Status} {enrolled.Result.Reason}");
        using (enrolled.Certificate)
        {
            Assert.Contains(await pair.NodeB.OpenRegistry().GetCertificatesAsync(serial, Ct), c => c.Sha256 == Core.Certificates.CertificateHash.Of(enrolled.Certificate!).ToString());
        }

        await pair.NodeA.DecisionAsync(d => d.Text("route") == "cmp:ir" && d.Text("subject") == serial && d.Text("reason") == "enrollment_deferred", "the ir held on node A");
        await pair.NodeB.DecisionAsync(d => d.Text("route") == "cmp:ir" && d.Text("subject") == serial && d.Text("reason") == "allowed", "the held ir served on node B at the poll");
    }

    /// <summary>A unit that does not wait: a pollRep ends its enrollment (none is expected where it is used).</summary>
    private static Task<bool> NoWaiting(TimeSpan checkAfter, CancellationToken ct) => Task.FromResult(false);

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
