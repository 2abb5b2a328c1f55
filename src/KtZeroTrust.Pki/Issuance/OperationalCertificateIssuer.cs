using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;

namespace KtZeroTrust.Pki.Issuance;

/// <summary>
/// Issues an operational certificate (LDevID) to a registered device and records it in the registry, which makes a
/// Provisioned device Active and puts the certificate on the allow list. Only Provisioned and Active devices qualify.
/// </summary>
public sealed class OperationalCertificateIssuer(CertificateAuthority operatorCa, IDeviceRegistry registry, TimeProvider timeProvider)
{
    public async Task<X509Certificate2> IssueAsync(string serial, TimeSpan lifetime, string actor, CancellationToken cancellationToken = default)
    {
        DeviceSerial.Validate(serial);
        var device = await registry.FindAsync(serial, cancellationToken)
            ?? throw new RegistryException(RegistryException.DeviceNotFound, $"No device with serial '{serial}'; import its manifest first.");
        if (device.State is not (DeviceLifecycleState.Provisioned or DeviceLifecycleState.Active))
        {
            throw new RegistryException(RegistryException.TransitionNotAllowed, $"Device '{serial}' is {device.State}; certificates are issued only to Provisioned or Active devices.");
        }

        var certificate = DeviceCertificates.IssueOperational(operatorCa, serial, lifetime, timeProvider);
        try
        {
            await registry.AddCertificateAsync(new DeviceCertificateRecord
            {
                Sha256 = CertificateHash.Of(certificate).ToString(),
                DeviceSerial = serial,
                CertificateSerialNumber = certificate.SerialNumber,
                NotBefore = certificate.NotBefore.ToUniversalTime(),
                NotAfter = certificate.NotAfter.ToUniversalTime(),
                IssuedAt = timeProvider.GetUtcNow(),
                PublicKeySha256 = KtZeroTrust.Core.Certificates.PublicKeyHash.Hex(certificate.PublicKey),
            }, actor, cancellationToken);
        }
        catch
        {
            certificate.Dispose();
            throw;
        }

        return certificate;
    }
}
