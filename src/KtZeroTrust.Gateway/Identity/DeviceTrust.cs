using System.Security.Cryptography.X509Certificates;

namespace KtZeroTrust.Gateway.Identity;

/// <summary>The trust anchors for device certificates: the operator device CA(s) only, never the system store.</summary>
public sealed class DeviceTrust
{
    private readonly X509ChainPolicy _template;

    public DeviceTrust(X509Certificate2Collection operatorCas)
    {
        ArgumentNullException.ThrowIfNull(operatorCas);
        if (operatorCas.Count == 0)
        {
            throw new ArgumentException("At least one operator device CA is required.", nameof(operatorCas));
        }

        OperatorCas = operatorCas;
        _template = Pki.Certificates.TrustPolicies.CustomRoots(operatorCas);
        _template.ApplicationPolicy.Add(new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.2"));
    }

    public X509Certificate2Collection OperatorCas { get; }

    /// <summary>A fresh chain policy (custom root trust, clientAuth EKU, no downloads); policies are not shared across chains.</summary>
    public X509ChainPolicy CreateChainPolicy() => _template.Clone();
}
