using System.Net;
using System.Net.Http.Headers;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Tests.Common;
using Org.BouncyCastle.Ocsp;

namespace KtZeroTrust.Server.Tests;

/// <summary>The OCSP responder against the client a security gateway's operator would test it with: <c>openssl ocsp</c>.</summary>
public sealed class OcspTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task OpensslOcsp_AnActiveUnitIsGood_ThenRevokedInTheVeryNextAnswer_EachAnswerADecision()
    {
        const string serial = "FC-0001";
        var first = await AskAsync(serial);
        Assert.Contains("Response verify OK", first, StringComparison.Ordinal); // signed by the delegated responder, chained to the operator CA
        Assert.Contains($"{serial}.pem: good", first, StringComparison.Ordinal);

        await server.TransitionAsync(serial, DeviceLifecycleState.Revoked, "stolen");
        var second = await AskAsync(serial); // no waiting: the next answer already knows

        Assert.Contains($"{serial}.pem: revoked", second, StringComparison.Ordinal);
        Assert.Contains("Revocation Time:", second, StringComparison.Ordinal);
        var decisions = (await server.DecisionsAsync()).Where(d => d.TryGetProperty("route", out var r) && r.GetString() == "ocsp").ToList();
        Assert.Contains(decisions, d => d.GetProperty("reason").GetString() == "allowed" && d.GetProperty("subject").GetString() == "127.0.0.1");
        Assert.Contains(decisions, d => d.GetProperty("reason").GetString() == "certificate_revoked" && d.GetProperty("detail").GetString()!.Contains(serial, StringComparison.Ordinal));
    }

    [Fact]
    public async Task ASuspension_IsACertificateHold_LiftedOnResume()
    {
        const string serial = "FC-0002";
        await server.TransitionAsync(serial, DeviceLifecycleState.Suspended, "tamper switch");
        var held = await AskAsync(serial);
        Assert.Contains($"{serial}.pem: revoked", held, StringComparison.Ordinal);
        Assert.Contains("Reason: certificateHold", held, StringComparison.Ordinal);

        await server.TransitionAsync(serial, DeviceLifecycleState.Active, "inspected");
        Assert.Contains($"{serial}.pem: good", await AskAsync(serial), StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetRequests_AreAnswered_AndBadOnesGetOcspErrorsOrHttpErrors_NeverGood()
    {
        const string serial = "FC-0003";
        var request = Path.Combine(server.Scratch, "ocsp-" + Guid.NewGuid().ToString("N") + ".der");
        await RunAsync("openssl", ["ocsp", "-issuer", server.Layout.OperatorCaCertificate, "-cert", server.Layout.LDevIdCertificate(serial), "-no_nonce", "-reqout", request]);
        using var http = server.ConsoleClient(); // any listener: it trusts only the dev TLS root

        // RFC 6960 A.1: the DER request, base64, URL-encoded, in the path.
        var get = await http.GetAsync(server.EnrollmentUri("/ocsp/" + Uri.EscapeDataString(Convert.ToBase64String(await File.ReadAllBytesAsync(request, Ct)))), Ct);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal("no-store", get.Headers.CacheControl?.ToString());
        var answer = new OcspResp(await get.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal(OcspRespStatus.Successful, answer.Status);
        Assert.Null(((BasicOcspResp)answer.GetResponseObject()).Responses[0].GetCertStatus()); // null is "good" in BouncyCastle

        // Garbage: an OCSP malformedRequest, not a good; the wrong media type: 415 with a reason.
        using var garbage = new ByteArrayContent([0x30, 0x03, 0x02, 0x01]);
        garbage.Headers.ContentType = new MediaTypeHeaderValue("application/ocsp-request");
        var malformed = await http.PostAsync(server.EnrollmentUri("/ocsp"), garbage, Ct);
        Assert.Equal(OcspRespStatus.MalformedRequest, new OcspResp(await malformed.Content.ReadAsByteArrayAsync(Ct)).Status);
        using var text = new StringContent("hello");
        var wrongType = await http.PostAsync(server.EnrollmentUri("/ocsp"), text, Ct);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, wrongType.StatusCode);
        Assert.Contains("unsupported_media_type", await wrongType.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task MutatedRequests_GetAnOcspAnswer_NeverAServerError_AndNeverGoodForAnotherCertificate()
    {
        var request = Path.Combine(server.Scratch, "ocsp-" + Guid.NewGuid().ToString("N") + ".der");
        await RunAsync("openssl", ["ocsp", "-issuer", server.Layout.OperatorCaCertificate, "-cert", server.Layout.LDevIdCertificate("FC-0002"), "-reqout", request]);
        var genuine = await File.ReadAllBytesAsync(request, Ct);
        var asked = new OcspReq(genuine).GetRequestList()[0].GetCertID();
        using var http = server.ConsoleClient();
        foreach (var (i, mutated) in Mutations.Of(genuine, 300, seed: 23, noise: 4))
        {
            using var content = new ByteArrayContent(mutated);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/ocsp-request");
            using var response = await http.PostAsync(server.EnrollmentUri("/ocsp"), content, Ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"mutation {i}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
            var answer = new OcspResp(await response.Content.ReadAsByteArrayAsync(Ct));
            if (answer.Status == OcspRespStatus.Successful)
            {
                // A "good" only ever names the certificate asked about in the original (a changed nonce still asks about it).
                foreach (var single in ((BasicOcspResp)answer.GetResponseObject()).Responses.Where(r => r.GetCertStatus() is null))
                {
                    Assert.True(single.GetCertID().SerialNumber.Equals(asked.SerialNumber) && single.GetCertID().GetIssuerKeyHash().AsSpan().SequenceEqual(asked.GetIssuerKeyHash()),
                        $"mutation {i}: good for serial {single.GetCertID().SerialNumber}");
                }
            }
        }
    }

    /// <summary>Asks about one dev LDevID with openssl (nonce on, response verified against the operator CA).</summary>
    private async Task<string> AskAsync(string serial)
    {
        var trust = Path.Combine(server.Scratch, "ocsp-trust.pem");
        if (!File.Exists(trust))
        {
            await File.WriteAllTextAsync(trust, await File.ReadAllTextAsync(server.Layout.TlsRootCertificate, Ct) + await File.ReadAllTextAsync(server.Layout.OperatorCaCertificate, Ct), Ct);
        }

        return await RunAsync("openssl", ["ocsp", "-issuer", server.Layout.OperatorCaCertificate, "-cert", server.Layout.LDevIdCertificate(serial),
            "-url", server.EnrollmentUri("/ocsp").ToString(), "-CAfile", trust, "-resp_text"]);
    }

    private static Task<string> RunAsync(string file, string[] args) => Tools.RunCheckedAsync(file, args, Ct);
}
