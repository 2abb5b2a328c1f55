using KtZeroTrust.Core.Certificates;

namespace KtZeroTrust.Gateway.Identity;

/// <summary>The device identity established by a connection's TLS handshake; computed once per connection.</summary>
public sealed class DeviceConnectionIdentity(CertificateHash hash, string serial)
{
    public CertificateHash Hash { get; } = hash;

    /// <summary>The serial the certificate names; the allow list, not this, decides which device it is.</summary>
    public string ClaimedSerial { get; } = serial;

    /// <summary>Hex form, kept for decision events so requests do not re-format it.</summary>
    public string HashHex { get; } = hash.ToString();
}
