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

    /// <summary>True when <paramref name="certificate"/> chains to <paramref name="root"/>.</summary>
    public static bool ChainsTo(X509Certificate2 certificate, X509Certificate2 root)
    {
        using var chain = new X509Chain { ChainPolicy = CustomRoots([root]) };
        return chain.Build(certificate);
    }
}
