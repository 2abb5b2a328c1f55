using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KtZeroTrust.Core.Certificates;

/// <summary>SHA-256 (lowercase hex) of a SubjectPublicKeyInfo: how one key is recognised across certificates and requests.</summary>
public static class PublicKeyHash
{
    public static string Hex(PublicKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()));
    }
}
