using System.Net.Http.Headers;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>The rogue units of the EST suite, over CMP with <c>openssl cmp</c>: each refused with its reason, nothing issued.</summary>
public sealed class CmpRogueTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private readonly CmpClient cmp = new(server);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string> FailedAttestations => new()
    {
        { "moved-unit", "location_outside_site" },
        { "old-firmware", "firmware_rollback" },
    };

    [Theory]
    [MemberData(nameof(FailedAttestations))]
    public async Task AUnitWhoseAttestationFailed_GetsNoCertificateOverCmp(string scenario, string attestationReason)
    {
        using var factory = server.FactoryCertificate("FC-0003");
        using var unit = new EnrollmentClient(server, factory);
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => unit.AttestAsync("FC-0003", factory, Ct, claims => scenario switch
        {
            "moved-unit" => claims with { Location = new KtZeroTrust.Pki.Attestation.LocationClaim(35.1, 129.0) },
            _ => claims with { Firmware = new KtZeroTrust.Pki.Attestation.FirmwareClaim(TestReference.OldVersion, TestReference.Digest(TestReference.OldVersion)) },
        }));
        Assert.Contains(attestationReason, failure.Message, StringComparison.Ordinal);

        var certificate = cmp.Scratch("rogue.pem");
        var (exit, output) = await cmp.IrAsync("FC-0003", await cmp.NewKeyAsync("rogue.key"), certificate);

        Assert.NotEqual(0, exit);
        Assert.Contains("attestation_required", output, StringComparison.Ordinal);
        Assert.False(File.Exists(certificate));
        await server.DecisionAsync(d => d.Text("route") == "cmp:ir" && d.Text("subject") == "FC-0003" && d.Text("reason") == "attestation_required", "the refused ir's decision");
    }

    [Fact]
    public async Task UnknownAndDecommissionedSerials_AndAnIdevIdTheManifestDoesNotName_AreRefused()
    {
        // Genuine vendor certificates: one for a serial the operator never imported, one for FC-0002 that is not the unit's own.
        using var vendor = new CertificateAuthority(PemFiles.ReadCertificateWithKey(server.Layout.VendorRootCertificate, server.Layout.VendorRootKey));
        var stranger = Issue(vendor, "FC-7777");
        var lookalike = Issue(vendor, "FC-0002");
        var key = await cmp.NewKeyAsync("k.key");

        var (unknownExit, unknown) = await cmp.RunAsync("-cmd", "ir", "-cert", stranger.Certificate, "-key", stranger.Key, "-newkey", key, "-subject", "/CN=FC-7777", "-certout", cmp.Scratch("u.pem"));
        Assert.NotEqual(0, unknownExit);
        Assert.Contains("device_unknown", unknown, StringComparison.Ordinal);

        await cmp.AttestAsync("FC-0002", Ct); // the real unit attested: the look-alike still may not spend it
        var (cloneExit, clone) = await cmp.RunAsync("-cmd", "ir", "-cert", lookalike.Certificate, "-key", lookalike.Key, "-newkey", key, "-subject", "/CN=FC-0002", "-certout", cmp.Scratch("c.pem"));
        Assert.NotEqual(0, cloneExit);
        Assert.Contains("identity_mismatch", clone, StringComparison.Ordinal);

        await server.TransitionAsync("FC-0006", DeviceLifecycleState.Decommissioned, "retired");
        var (retiredExit, retired) = await cmp.IrAsync("FC-0006", key, cmp.Scratch("r.pem"));
        Assert.NotEqual(0, retiredExit);
        Assert.Contains("device_not_enrollable", retired, StringComparison.Ordinal);

        // The real FC-0002 enrolls with the attestation the look-alike could not use.
        var (exit, output) = await cmp.IrAsync("FC-0002", key, cmp.Scratch("ok.pem"));
        Assert.True(exit == 0, output);
    }

    [Fact]
    public async Task ARequestSignedByAnotherUnitsIDevId_ForThisUnit_IsRefused()
    {
        await cmp.AttestAsync("FC-0004", Ct);
        var before = (await server.OpenRegistry().GetCertificatesAsync("FC-0005", Ct)).Count;
        var (exit, output) = await cmp.RunAsync("-cmd", "ir", "-cert", server.Layout.IDevIdCertificate("FC-0005"), "-key", server.Layout.IDevIdKey("FC-0005"),
            "-newkey", await cmp.NewKeyAsync("borrowed.key"), "-subject", "/CN=FC-0004", "-certout", cmp.Scratch("borrowed.pem"));

        Assert.NotEqual(0, exit);
        Assert.Contains("csr_identity_mismatch", output, StringComparison.Ordinal);
        Assert.Equal(before, (await server.OpenRegistry().GetCertificatesAsync("FC-0005", Ct)).Count);
    }

    [Fact]
    public async Task AReplayedIr_IsRefused_AndAnotherUnitsKey_IsKeyShared()
    {
        await cmp.AttestAsync("FC-0001", Ct);
        var requests = cmp.Scratch("ir.der");
        var key = await cmp.NewKeyAsync("first.key");
        var (exit, output) = await cmp.IrAsync("FC-0001", key, cmp.Scratch("first.pem"), "-reqout", requests + ".1," + requests + ".2");
        Assert.True(exit == 0, output);

        // The captured ir, sent again byte for byte: its attestation is spent.
        using var http = server.ConsoleClient();
        using var replay = new ByteArrayContent(await File.ReadAllBytesAsync(requests + ".1", Ct));
        replay.Headers.ContentType = new MediaTypeHeaderValue("application/pkixcmp");
        var answer = await http.PostAsync(server.EnrollmentUri("/.well-known/cmp"), replay, Ct);
        var error = Org.BouncyCastle.Asn1.Cmp.PkiMessage.GetInstance(await answer.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal(Org.BouncyCastle.Asn1.Cmp.PkiBody.TYPE_ERROR, error.Body.Type);
        Assert.StartsWith("attestation_required", Org.BouncyCastle.Asn1.Cmp.ErrorMsgContent.GetInstance(error.Body.Content).PkiStatusInfo.StatusString[0].GetString(), StringComparison.Ordinal);

        // FC-0005, attested, asks for a certificate on the key FC-0001 now holds: refused, and the shared-key alert raised.
        await cmp.AttestAsync("FC-0005", Ct);
        var (sharedExit, shared) = await cmp.IrAsync("FC-0005", key, cmp.Scratch("shared.pem"));
        Assert.NotEqual(0, sharedExit);
        Assert.Contains("key_shared", shared, StringComparison.Ordinal);
        await server.DecisionAsync(d => d.Text("kind") == "alert" && d.Text("reason") == "key_shared" && d.Text("subject") == "FC-0005", "the shared-key alert");
    }

    [Fact]
    public async Task MutatedMessages_AreAlwaysSignedCmpErrors_NeverAServerError_AndIssueNothing()
    {
        await cmp.AttestAsync("FC-0003", Ct);
        var captured = cmp.Scratch("genuine.der");
        // A genuine ir captured on its way out, never answered (nothing listens on port 9), so its attestation stays unspent.
        await Tools.RunAsync("openssl", ["cmp", "-cmd", "ir", "-server", "127.0.0.1:9", "-path", ".well-known/cmp", "-cert", server.Layout.IDevIdCertificate("FC-0003"),
            "-key", server.Layout.IDevIdKey("FC-0003"), "-newkey", await cmp.NewKeyAsync("m.key"), "-subject", "/CN=FC-0003", "-reqout", captured, "-certout", cmp.Scratch("never.pem"),
            "-trusted", server.Layout.OperatorCaCertificate, "-msg_timeout", "1", "-total_timeout", "2"], Ct);
        var genuine = await File.ReadAllBytesAsync(captured, Ct);
        var before = (await server.OpenRegistry().GetCertificatesAsync("FC-0003", Ct)).Count;

        using var http = server.ConsoleClient();
        foreach (var (i, mutated) in Mutations.Of(genuine, 300, seed: 17, noise: 8))
        {
            using var content = new ByteArrayContent(mutated);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/pkixcmp");
            using var response = await http.PostAsync(server.EnrollmentUri("/.well-known/cmp"), content, Ct);
            Assert.True(response.StatusCode == System.Net.HttpStatusCode.OK, $"mutation {i}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
            var answer = Org.BouncyCastle.Asn1.Cmp.PkiMessage.GetInstance(await response.Content.ReadAsByteArrayAsync(Ct));
            if (answer.Body.Type != Org.BouncyCastle.Asn1.Cmp.PkiBody.TYPE_ERROR)
            {
                // Served only if what is signed, the signature and the signer's certificate are unchanged: the change was in
                // the encoding alone, or in a helper certificate of extraCerts that nothing trusts (they are unprotected).
                Assert.True(SameSignedMessage(mutated, genuine), $"mutation {i} changed the message and was answered with body {answer.Body.Type}");
            }
        }

        Assert.Equal(before, (await server.OpenRegistry().GetCertificatesAsync("FC-0003", Ct)).Count);
        var (exit, output) = await cmp.IrAsync("FC-0003", await cmp.NewKeyAsync("after.key"), cmp.Scratch("after.pem"));
        Assert.True(exit == 0, output); // the genuine unit, after all that, still enrolls
    }

    private static bool SameSignedMessage(byte[] mutated, byte[] genuine)
    {
        var (m, g) = (Org.BouncyCastle.Asn1.Cmp.PkiMessage.GetInstance(mutated), Org.BouncyCastle.Asn1.Cmp.PkiMessage.GetInstance(genuine));
        static byte[] Der(Org.BouncyCastle.Asn1.Asn1Encodable e) => e.GetEncoded(Org.BouncyCastle.Asn1.Asn1Encodable.Der);
        return Der(m.Header).AsSpan().SequenceEqual(Der(g.Header)) && Der(m.Body).AsSpan().SequenceEqual(Der(g.Body))
            && Der(m.Protection).AsSpan().SequenceEqual(Der(g.Protection)) && Der(m.GetExtraCerts()[0]).AsSpan().SequenceEqual(Der(g.GetExtraCerts()[0]));
    }

    private (string Certificate, string Key) Issue(CertificateAuthority vendor, string serial)
    {
        using var certificate = vendor.IssueWithNewKey(DeviceCertificates.Subject(serial, "Vendor"), CertificateUsage.ClientAuth,
            DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), uri: DeviceCertificates.DeviceUri(serial));
        var path = cmp.Scratch(serial);
        File.WriteAllText(path + ".pem", certificate.ExportCertificatePem());
        using var key = System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions.GetECDsaPrivateKey(certificate)!;
        File.WriteAllText(path + ".key", key.ExportPkcs8PrivateKeyPem());
        return (path + ".pem", path + ".key");
    }
}
