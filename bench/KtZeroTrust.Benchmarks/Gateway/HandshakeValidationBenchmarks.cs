using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Gateway;
using KtZeroTrust.Gateway.Identity;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Benchmarks.Gateway;

/// <summary>
/// What a full mTLS handshake on the device listener costs beyond the TLS exchange itself: loading the peer
/// certificate, the chain SslStream builds under the operator-CA policy, the certificate hash and our cached policy check.
/// </summary>
[MemoryDiagnoser]
public class HandshakeValidationBenchmarks
{
    private X509Certificate2 _device = null!;
    private byte[] _raw = null!;
    private DeviceTrust _trust = null!;
    private DeviceCertificateValidator _validator = null!;
    private X509Chain _chain = null!;

    [GlobalSetup]
    public void Setup()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Operator Device CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));

        using var deviceKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=FC-0001, serialNumber=FC-0001", deviceKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var issued = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7), [1, 2, 3, 4]);
        _raw = issued.RawData;
        _device = X509CertificateLoader.LoadCertificate(_raw);
        _trust = new DeviceTrust([X509CertificateLoader.LoadCertificate(ca.RawData)]);
        _validator = new DeviceCertificateValidator(_trust, Options.Create(new DeviceGatewayOptions()), TimeProvider.System);
        _chain = new X509Chain { ChainPolicy = _trust.CreateChainPolicy() };
        _chain.Build(_device); // what SslStream hands the validation callback
        if (!_validator.ValidateHandshake(_device, _chain, SslPolicyErrors.None).IsValid)
        {
            throw new InvalidOperationException("the sample device certificate does not pass the gateway's policy");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _chain.Dispose();
        _device.Dispose();
    }

    /// <summary>SslStream turns the peer's DER into a certificate object on every handshake.</summary>
    [Benchmark]
    public int LoadPeerCertificate()
    {
        using var certificate = X509CertificateLoader.LoadCertificate(_raw);
        return certificate.Version;
    }

    /// <summary>The chain SslStream builds once per handshake under <see cref="DeviceTrust.CreateChainPolicy"/>.</summary>
    [Benchmark]
    public bool BuildChain()
    {
        using var chain = new X509Chain { ChainPolicy = _trust.CreateChainPolicy() };
        var built = chain.Build(_device);
        foreach (var element in chain.ChainElements)
        {
            element.Certificate.Dispose();
        }

        return built;
    }

    [Benchmark]
    public CertificateHash HashCertificate() => CertificateHash.Of(_device);

    /// <summary>Our validation callback for a certificate seen before (hash, then the cached policy result).</summary>
    [Benchmark]
    public bool ValidateCached() => _validator.ValidateHandshake(_device, _chain, SslPolicyErrors.None).IsValid;
}
