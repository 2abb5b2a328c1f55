using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;

namespace KtZeroTrust.Gateway.AllowList;

public enum ResolutionStatus
{
    Found,
    NotFound,

    /// <summary>The next level could not be asked (down, overloaded, timed out): deny, do not cache.</summary>
    Unavailable,
}

public readonly record struct AllowListResolution(ResolutionStatus Status, AllowListEntry? Entry);

/// <summary>The level behind the in-process cache (Redis, then the registry). None in the embedded mode: the L1 is complete there.</summary>
public interface IAllowListResolver
{
    Task<AllowListResolution> ResolveAsync(CertificateHash hash, CancellationToken cancellationToken);
}
