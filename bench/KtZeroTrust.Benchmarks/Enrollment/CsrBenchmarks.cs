using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.Est;

namespace KtZeroTrust.Benchmarks.Enrollment;

/// <summary>
/// The EST step's CSR work (parse, signature check, key policy, key hash), and the key policy alone: the same policy
/// the gateway applies to a certificate it has not seen before.
/// </summary>
[MemoryDiagnoser]
public class CsrBenchmarks
{
    private byte[] _csr = null!;
    private PublicKey _key = null!;

    [GlobalSetup]
    public void Setup()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=FC-0001", key, HashAlgorithmName.SHA256);
        _csr = request.CreateSigningRequest();
        _key = request.PublicKey;
    }

    [Benchmark]
    public ParsedCsr ParseCsr() => CsrParser.Parse(_csr);

    [Benchmark]
    public string? KeyPolicy() => DeviceKeyPolicy.Violation(_key);
}
