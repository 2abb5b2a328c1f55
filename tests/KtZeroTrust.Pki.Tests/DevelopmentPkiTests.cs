using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Pki.Manifests;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Pki.Tests;

public sealed class DevelopmentPkiTests
{
    private static DevPkiLayout NewLayout(TempDirectory temp, params string[] serials)
    {
        var layout = new DevPkiLayout(temp.Combine("pki"));
        Directory.CreateDirectory(layout.Directory);
        File.WriteAllText(layout.Manifest, JsonSerializer.Serialize(new
        {
            devices = serials.Select(s => new { serial = s, model = "M1", idevidCertificate = $"idevid/{s}.pem" }),
        }));
        return layout;
    }

    [Fact]
    public void Initialize_CreatesCasServerAndIDevIds_WithPrivateKeysOwnerOnly()
    {
        using var temp = new TempDirectory();
        var layout = NewLayout(temp, "FC-1", "FC-2");

        var written = DevelopmentPki.Initialize(layout, force: false, TimeProvider.System);

        Assert.Equal(12, written.Count); // 3 CAs + server + 2 IDevIDs, each certificate and key
        Assert.True(layout.IsInitialized);
        foreach (var key in written.Where(f => f.EndsWith(".key.pem", StringComparison.Ordinal)))
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        }

        using var server = PemFiles.ReadCertificateWithKey(layout.ServerCertificate, layout.ServerKey);
        Assert.True(server.MatchesHostname("localhost"));
        Assert.True(server.MatchesHostname("127.0.0.1"));
        Assert.True(server.MatchesHostname("::1"));
        Assert.NotNull(server.GetECDsaPrivateKey());
        Assert.True(DevelopmentPki.IsDevelopmentCertificate(server));

        using var vendor = PemFiles.ReadCertificate(layout.VendorRootCertificate);
        using var idevid = PemFiles.ReadCertificate(layout.IDevIdCertificate("FC-2"));
        Assert.Equal("FC-2", DeviceCertificates.SerialOf(idevid));
        Assert.Equal(vendor.Subject, idevid.Issuer);
    }

    [Fact]
    public void Initialize_Twice_RefusesWithoutForceAndReplacesWithForce()
    {
        using var temp = new TempDirectory();
        var layout = NewLayout(temp, "FC-1");
        DevelopmentPki.Initialize(layout, force: false, TimeProvider.System);
        var before = File.ReadAllText(layout.OperatorCaCertificate);

        var ex = Assert.Throws<PkiException>(() => DevelopmentPki.Initialize(layout, force: false, TimeProvider.System));
        Assert.Equal(PkiException.WouldOverwrite, ex.Code);
        Assert.Equal(before, File.ReadAllText(layout.OperatorCaCertificate));

        DevelopmentPki.Initialize(layout, force: true, TimeProvider.System);
        Assert.NotEqual(before, File.ReadAllText(layout.OperatorCaCertificate));
    }

    [Fact]
    public void Manifest_ResolveDevices_ChecksIDevIdSerialAndVendorChain()
    {
        using var temp = new TempDirectory();
        var layout = NewLayout(temp, "FC-1", "FC-2");
        DevelopmentPki.Initialize(layout, force: false, TimeProvider.System);
        using var vendor = PemFiles.ReadCertificate(layout.VendorRootCertificate);

        var devices = ManufacturingManifest.Load(layout.Manifest).ResolveDevices(layout.Manifest, vendor);
        Assert.Equal(["FC-1", "FC-2"], devices.Select(d => d.Serial).ToArray());
        Assert.All(devices, d => Assert.Equal(64, d.IDevIdSha256!.Length));

        using var otherVendor = TestCertificates.CreateCa("CN=Other vendor");
        var wrong = Assert.Throws<PkiException>(() => ManufacturingManifest.Load(layout.Manifest).ResolveDevices(layout.Manifest, otherVendor.Certificate));
        Assert.Contains("vendor root", wrong.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Manifest_OneKeyUnderTwoSerials_IsRefusedAsFleetWideCredential()
    {
        using var temp = new TempDirectory();
        var layout = NewLayout(temp, "FC-1");
        DevelopmentPki.Initialize(layout, force: false, TimeProvider.System);
        // A second entry pointing at FC-1's certificate: same key under two serials.
        File.WriteAllText(layout.Manifest, """{"devices":[{"serial":"FC-1","model":"M","idevidCertificate":"idevid/FC-1.pem"},{"serial":"FC-1b","model":"M","idevidCertificate":"idevid/FC-1.pem"}]}""");

        var ex = Assert.Throws<PkiException>(() => ManufacturingManifest.Load(layout.Manifest).ResolveDevices(layout.Manifest, null));

        Assert.Contains("names serial 'FC-1'", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("{\"devices\":[]}", "lists no devices")]
    [InlineData("{\"devices\":[{\"serial\":\"../x\",\"model\":\"M\"}]}", "invalid serial")]
    [InlineData("{\"devices\":[{\"serial\":\"A1\",\"model\":\"\"}]}", "model is required")]
    [InlineData("{\"devices\":[{\"serial\":\"A1\",\"model\":\"M\"},{\"serial\":\"A1\",\"model\":\"M\"}]}", "listed twice")]
    public void Manifest_Malformed_IsRejectedWithClearError(string json, string message)
    {
        using var temp = new TempDirectory();
        var path = temp.Combine("m.json");
        File.WriteAllText(path, json);

        var ex = Assert.Throws<PkiException>(() => ManufacturingManifest.Load(path));

        Assert.Equal(PkiException.InvalidManifest, ex.Code);
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void IssueOperational_IsShortLivedClientAuthWithDeviceUri_AndRefusesLongLifetimes()
    {
        using var ca = TestCertificates.CreateCa();
        using var cert = DeviceCertificates.IssueOperational(ca, "FC-7", TimeSpan.FromHours(12), TimeProvider.System);

        Assert.Equal("FC-7", DeviceCertificates.SerialOf(cert));
        Assert.True(cert.NotAfter - cert.NotBefore <= TimeSpan.FromHours(12) + TimeSpan.FromMinutes(1));
        var eku = cert.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single();
        Assert.Equal("1.3.6.1.5.5.7.3.2", Assert.Single(eku.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>()).Value);
        Assert.False(cert.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);

        var ex = Assert.Throws<PkiException>(() => DeviceCertificates.IssueOperational(ca, "FC-7", TimeSpan.FromDays(3650), TimeProvider.System));
        Assert.Equal(PkiException.PolicyViolation, ex.Code);
    }

    [Fact]
    public void ReadCertificate_Garbage_GivesClearError()
    {
        using var temp = new TempDirectory();
        var path = temp.Combine("bad.pem");
        File.WriteAllText(path, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");

        Assert.Equal(PkiException.MalformedFile, Assert.Throws<PkiException>(() => PemFiles.ReadCertificate(path)).Code);
        Assert.Equal(PkiException.MissingFile, Assert.Throws<PkiException>(() => PemFiles.ReadCertificate(temp.Combine("missing.pem"))).Code);
    }
}
