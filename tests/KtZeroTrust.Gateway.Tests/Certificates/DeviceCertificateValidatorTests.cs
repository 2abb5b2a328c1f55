using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Gateway.Identity;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Gateway.Tests.Certificates;

public sealed class DeviceCertificateValidatorTests : IDisposable
{
    private readonly CertificateAuthority _operatorCa = TestCertificates.CreateCa("CN=Operator Device CA, O=Operator");
    private readonly DeviceCertificateValidator _validator;

    public DeviceCertificateValidatorTests()
        => _validator = new DeviceCertificateValidator(new DeviceTrust([_operatorCa.Certificate]), Options.Create(new DeviceGatewayOptions()), TimeProvider.System);

    [Fact]
    public void Validate_OperatorIssuedDeviceCertificate_YieldsIdentity()
    {
        using var cert = TestCertificates.Device(_operatorCa, "FC-0001");

        var result = _validator.Validate(cert);

        Assert.True(result.IsValid);
        Assert.Equal("FC-0001", result.Identity!.ClaimedSerial);
    }

    [Fact]
    public void Validate_SameCertificateTwice_IsCachedByHash()
    {
        using var cert = TestCertificates.Device(_operatorCa, "FC-0001");
        var first = _validator.Validate(cert);

        var second = _validator.Validate(cert);

        Assert.Same(first, second);
        Assert.Equal(1, _validator.CachedCount);
    }

    [Fact]
    public void Validate_CertificatesFromOtherOrLookAlikeCa_AreUntrusted()
    {
        using var other = TestCertificates.CreateCa("CN=Operator Device CA, O=Operator");
        using var lookAlike = TestCertificates.Device(other, "FC-0001");
        using var genuine = TestCertificates.Device(_operatorCa, "FC-0001");
        using var selfSigned = TestCertificates.SelfSignedLookAlike(genuine);

        Assert.Equal(ReasonCode.CertificateUntrusted, _validator.Validate(lookAlike).Reason);
        Assert.Equal(ReasonCode.CertificateUntrusted, _validator.Validate(selfSigned).Reason);
    }

    [Fact]
    public void Validate_ExpiredCertificate_IsExpired()
    {
        var now = DateTimeOffset.UtcNow;
        using var cert = TestCertificates.Device(_operatorCa, "FC-0001", now.AddDays(-3), now.AddDays(-1));

        Assert.Equal(ReasonCode.CertificateExpired, _validator.Validate(cert).Reason);
    }

    [Fact]
    public void Validate_TenYearCertificate_ViolatesPolicy()
    {
        var now = DateTimeOffset.UtcNow;
        using var cert = TestCertificates.Device(_operatorCa, "FC-0001", now.AddMinutes(-1), now.AddDays(3000));

        Assert.Equal(ReasonCode.CertificatePolicyViolation, _validator.Validate(cert).Reason);
    }

    [Fact]
    public void ValidateHandshake_WithoutCertificate_IsMissing()
        => Assert.Equal(ReasonCode.CertificateMissing, _validator.ValidateHandshake(null, null, System.Net.Security.SslPolicyErrors.RemoteCertificateNotAvailable).Reason);

    public void Dispose() => _operatorCa.Dispose();
}
