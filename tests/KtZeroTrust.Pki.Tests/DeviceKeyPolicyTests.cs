using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Pki.Certificates;

namespace KtZeroTrust.Pki.Tests;

public sealed class DeviceKeyPolicyTests
{
    private static PublicKey KeyOn(ECCurve curve)
    {
        using var key = ECDsa.Create(curve);
        return new CertificateRequest("CN=FC-1", key, HashAlgorithmName.SHA256).PublicKey;
    }

    [Fact]
    public void NamedP256AndP384_AreAllowed_OtherCurvesAndExplicitParametersAreNot()
    {
        Assert.Null(DeviceKeyPolicy.Violation(KeyOn(ECCurve.NamedCurves.nistP256)));
        Assert.Null(DeviceKeyPolicy.Violation(KeyOn(ECCurve.NamedCurves.nistP384)));
        Assert.Contains("1.3.132.0.35", DeviceKeyPolicy.Violation(KeyOn(ECCurve.NamedCurves.nistP521)), StringComparison.Ordinal);
        Assert.NotNull(DeviceKeyPolicy.Violation(KeyOn(ECCurve.NamedCurves.brainpoolP256r1)));

        // P-256 itself, spelled out as explicit parameters: refused, as a weak curve under a familiar size would be.
        using var named = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var spelledOut = ECDsa.Create(named.ExportExplicitParameters(false));
        var explicitKey = PublicKey.CreateFromSubjectPublicKeyInfo(spelledOut.ExportSubjectPublicKeyInfo(), out _);
        Assert.Contains("explicit", DeviceKeyPolicy.Violation(explicitKey), StringComparison.Ordinal);

        using var rsa = RSA.Create(2048);
        Assert.Contains("not accepted", DeviceKeyPolicy.Violation(new CertificateRequest("CN=FC-1", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1).PublicKey), StringComparison.Ordinal);
    }

    [Fact]
    public void Import_MakesTheSameKeyFromItsPoint_AndRefusesAPointOffTheCurve()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var spki = key.ExportSubjectPublicKeyInfo();
        using (var imported = DeviceKeyPolicy.Import(PublicKey.CreateFromSubjectPublicKeyInfo(spki, out _)))
        {
            var data = "to be signed"u8.ToArray();
            Assert.True(imported.VerifyData(data, key.SignData(data, HashAlgorithmName.SHA384), HashAlgorithmName.SHA384));
        }

        spki[^1] ^= 0x01; // the point's last byte: still well-formed, no longer on P-384
        var offCurve = PublicKey.CreateFromSubjectPublicKeyInfo(spki, out _);
        Assert.Null(DeviceKeyPolicy.Violation(offCurve)); // the encoding is admissible; the point is checked on import
        Assert.ThrowsAny<CryptographicException>(() => DeviceKeyPolicy.Import(offCurve));
    }
}
