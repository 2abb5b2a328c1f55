using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;

namespace KtZeroTrust.Benchmarks.Enrollment;

/// <summary>
/// The physical limit of an attested enrollment: the ECDSA P-256 operations it cannot do without, through .NET's
/// ECDsa (OpenSSL underneath), on one core. An enrollment needs 2 signatures (the certificate, and the unit's own
/// evidence or proof of possession when the simulator shares the machine) and 3 verifications (the evidence's CMS
/// signature, the CSR's, the IDevID's chain), so its floor is 1 / (2 x Sign + 3 x Verify) per core.
/// </summary>
[MemoryDiagnoser]
public class EnrollmentCryptoBenchmarks
{
    private ECDsa _key = null!;
    private byte[] _digest = null!;
    private byte[] _signature = null!;

    [GlobalSetup]
    public void Setup()
    {
        _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        _digest = SHA256.HashData("an enrollment's to-be-signed bytes"u8);
        _signature = _key.SignHash(_digest);
    }

    [GlobalCleanup]
    public void Cleanup() => _key.Dispose();

    [Benchmark]
    public byte[] SignP256() => _key.SignHash(_digest);

    [Benchmark]
    public bool VerifyP256() => _key.VerifyHash(_digest, _signature);
}
