using System.Security.Cryptography;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Asn1.X9;
using Org.BouncyCastle.Crypto;

namespace KtZeroTrust.Pki.Certificates;

/// <summary>
/// BouncyCastle's signing and verifying interfaces backed by .NET's ECDSA (OpenSSL): BouncyCastle builds and parses
/// the CMP and OCSP structures, OpenSSL does the curve arithmetic, about 14 times faster than BouncyCastle's managed
/// P-256 signature on this machine (bench/README.md). Signatures are the DER SEQUENCE { r, s } of RFC 3279.
/// </summary>
public static class EcdsaSignatures
{
    /// <summary>A signer for <paramref name="key"/>: SHA-256 on P-256, SHA-384 on P-384 and larger.</summary>
    public static ISignatureFactory Signer(ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var (oid, hash) = key.KeySize <= 256 ? (X9ObjectIdentifiers.ECDsaWithSha256, HashAlgorithmName.SHA256) : (X9ObjectIdentifiers.ECDsaWithSha384, HashAlgorithmName.SHA384);
        return new SignatureFactory(key, new AlgorithmIdentifier(oid), hash);
    }

    /// <summary>A verifier of <paramref name="algorithm"/> (ecdsa-with-SHA256/384/512) with <paramref name="key"/>, or null for any other algorithm.</summary>
    public static IVerifierFactory? Verifier(ECDsa key, AlgorithmIdentifier algorithm)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(algorithm);
        return HashOf(algorithm.Algorithm) is { } hash ? new VerifierFactory(key, algorithm, hash) : null;
    }

    /// <summary>The same, as the provider BouncyCastle's CRMF proof-of-possession check asks for.</summary>
    public static IVerifierFactoryProvider VerifierProvider(ECDsa key) => new EcdsaVerifierProvider(key);

    private static HashAlgorithmName? HashOf(DerObjectIdentifier oid)
        => oid.Equals(X9ObjectIdentifiers.ECDsaWithSha256) ? HashAlgorithmName.SHA256
        : oid.Equals(X9ObjectIdentifiers.ECDsaWithSha384) ? HashAlgorithmName.SHA384
        : oid.Equals(X9ObjectIdentifiers.ECDsaWithSha512) ? HashAlgorithmName.SHA512
        : null;

    private sealed class SignatureFactory(ECDsa key, AlgorithmIdentifier algorithm, HashAlgorithmName hash) : ISignatureFactory
    {
        public object AlgorithmDetails => algorithm;

        public IStreamCalculator<IBlockResult> CreateCalculator() => new Calculator<IBlockResult>(data => new Signature(key.SignData(data, hash, DSASignatureFormat.Rfc3279DerSequence)));
    }

    private sealed class VerifierFactory(ECDsa key, AlgorithmIdentifier algorithm, HashAlgorithmName hash) : IVerifierFactory
    {
        public object AlgorithmDetails => algorithm;

        public IStreamCalculator<IVerifier> CreateCalculator() => new Calculator<IVerifier>(data => new EcdsaVerifier(key, data, hash));
    }

    private sealed class EcdsaVerifierProvider(ECDsa key) : IVerifierFactoryProvider
    {
        public IVerifierFactory CreateVerifierFactory(object algorithmDetails)
            => (algorithmDetails is AlgorithmIdentifier algorithm ? Verifier(key, algorithm) : null)
                ?? throw new InvalidOperationException($"Not an ECDSA signature algorithm: {algorithmDetails}.");
    }

    /// <summary>Collects what BouncyCastle writes (a TBS structure of a few hundred bytes), then signs or verifies it at once.</summary>
    private sealed class Calculator<T>(Func<byte[], T> result) : IStreamCalculator<T>, IDisposable
    {
        private readonly MemoryStream _stream = new();

        public Stream Stream => _stream;

        public T GetResult() => result(_stream.ToArray());

        public void Dispose() => _stream.Dispose(); // a MemoryStream holds no handle; BouncyCastle never calls this
    }

    private sealed class Signature(byte[] der) : IBlockResult
    {
        public byte[] Collect() => (byte[])der.Clone();

        public int Collect(byte[] buf, int off)
        {
            der.CopyTo(buf, off);
            return der.Length;
        }

        public int Collect(Span<byte> output)
        {
            der.CopyTo(output);
            return der.Length;
        }

        public int GetMaxResultLength() => der.Length;
    }

    private sealed class EcdsaVerifier(ECDsa key, byte[] signed, HashAlgorithmName hash) : IVerifier
    {
        public bool IsVerified(byte[] data) => IsVerified(data, 0, data?.Length ?? 0);

        public bool IsVerified(byte[] source, int off, int length)
        {
            ArgumentNullException.ThrowIfNull(source);
            try
            {
                return key.VerifyData(signed, source.AsSpan(off, length), hash, DSASignatureFormat.Rfc3279DerSequence);
            }
            catch (CryptographicException)
            {
                return false; // not a DER signature at all
            }
        }
    }
}
