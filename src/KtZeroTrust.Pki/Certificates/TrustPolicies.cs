using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace KtZeroTrust.Pki.Certificates;

/// <summary>The one way this product builds chains: trust only the given roots, no revocation fetches, no downloads.</summary>
public static class TrustPolicies
{
    public static X509ChainPolicy CustomRoots(X509Certificate2Collection roots)
    {
        ArgumentNullException.ThrowIfNull(roots);
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            // Revocation is decided by the registry and the allow list, never by CRL or OCSP fetches during a chain build.
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        };
        policy.CustomTrustStore.AddRange(roots);
        return policy;
    }

    /// <summary>
    /// The server-certificate check for an outgoing TLS connection to a service with a private CA (Redis, an identity
    /// provider): the name must match and the chain must end at one of <paramref name="roots"/>; the system store is
    /// not consulted.
    /// </summary>
    public static RemoteCertificateValidationCallback ServerTrustedBy(X509Certificate2Collection roots)
    {
        ArgumentNullException.ThrowIfNull(roots);
        return (_, certificate, _, errors) =>
        {
            if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
            {
                return false;
            }

            using var chain = new X509Chain { ChainPolicy = CustomRoots(roots) };
            using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            return chain.Build(leaf);
        };
    }

    /// <summary>True when <paramref name="certificate"/> chains to <paramref name="root"/>.</summary>
    public static bool ChainsTo(X509Certificate2 certificate, X509Certificate2 root)
    {
        using var chain = new X509Chain { ChainPolicy = CustomRoots([root]) };
        return chain.Build(certificate);
    }
}
