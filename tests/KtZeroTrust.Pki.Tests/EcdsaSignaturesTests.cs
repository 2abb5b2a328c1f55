using System.Security.Cryptography;
using KtZeroTrust.Pki.Certificates;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Asn1.X9;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Operators;
using Org.BouncyCastle.Security;

namespace KtZeroTrust.Pki.Tests;

/// <summary>The OpenSSL-backed signer and verifier agree with BouncyCastle's own, both ways, and refuse what they must.</summary>
public sealed class EcdsaSignaturesTests
{
    private static readonly byte[] Data = "a CMP header and body, DER-encoded"u8.ToArray();

    [Theory]
    [InlineData(256, "SHA256WITHECDSA")]
    [InlineData(384, "SHA384WITHECDSA")]
    public void OurSignature_VerifiesWithBouncyCastle_AndTheirsWithOurs(int bits, string algorithm)
    {
        using var key = ECDsa.Create(bits == 256 ? ECCurve.NamedCurves.nistP256 : ECCurve.NamedCurves.nistP384);
        var bcPublic = PublicKeyFactory.CreateKey(key.ExportSubjectPublicKeyInfo());

        var ours = Sign(EcdsaSignatures.Signer(key));
        var theirsVerify = new Asn1VerifierFactory(algorithm, bcPublic);
        Assert.Equal(algorithm == "SHA256WITHECDSA" ? X9ObjectIdentifiers.ECDsaWithSha256 : X9ObjectIdentifiers.ECDsaWithSha384,
            ((AlgorithmIdentifier)EcdsaSignatures.Signer(key).AlgorithmDetails).Algorithm);
        Assert.True(Verify(theirsVerify, ours));

        var theirs = Sign(new Asn1SignatureFactory(algorithm, PrivateKeyFactory.CreateKey(key.ExportPkcs8PrivateKey())));
        var verifier = EcdsaSignatures.Verifier(key, (AlgorithmIdentifier)theirsVerify.AlgorithmDetails)!;
        Assert.True(Verify(verifier, theirs));
    }

    [Fact]
    public void ATamperedSignature_AnotherKey_GarbageAndANonEcdsaAlgorithm_DoNotVerify()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var signature = Sign(EcdsaSignatures.Signer(key));
        var algorithm = new AlgorithmIdentifier(X9ObjectIdentifiers.ECDsaWithSha256);

        var tampered = (byte[])signature.Clone();
        tampered[^1] ^= 1;
        Assert.False(Verify(EcdsaSignatures.Verifier(key, algorithm)!, tampered));
        Assert.False(Verify(EcdsaSignatures.Verifier(other, algorithm)!, signature));
        Assert.False(Verify(EcdsaSignatures.Verifier(key, algorithm)!, "not DER"u8.ToArray()));
        Assert.Null(EcdsaSignatures.Verifier(key, new AlgorithmIdentifier(Org.BouncyCastle.Asn1.Pkcs.PkcsObjectIdentifiers.Sha1WithRsaEncryption)));
        Assert.Throws<InvalidOperationException>(() => EcdsaSignatures.VerifierProvider(key).CreateVerifierFactory(new AlgorithmIdentifier(X9ObjectIdentifiers.ECDsaWithSha1)));
    }

    private static byte[] Sign(ISignatureFactory factory)
    {
        var calculator = factory.CreateCalculator();
        calculator.Stream.Write(Data);
        return calculator.GetResult().Collect();
    }

    private static bool Verify(IVerifierFactory factory, byte[] signature)
    {
        var calculator = factory.CreateCalculator();
        calculator.Stream.Write(Data);
        return calculator.GetResult().IsVerified(signature);
    }
}
