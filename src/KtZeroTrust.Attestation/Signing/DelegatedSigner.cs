using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Pki.Certificates;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Security;
using BcCertificate = Org.BouncyCastle.X509.X509Certificate;

namespace KtZeroTrust.Attestation.Signing;

/// <summary>
/// A signing certificate the operator CA delegates one purpose to, for a key that lives only in this process's memory,
/// renewed when half of its day is over: no signing key on disk, and a stolen one is worthless within a day. The CA's
/// own key signs certificates only.
/// </summary>
public abstract class DelegatedSigner(CertificateAuthority operatorCa, CertificateUsage usage, string commonName)
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromDays(1);
    private readonly Lock _gate = new();
    private (BcCertificate Certificate, AsymmetricKeyParameter Key, DateTimeOffset RenewAt)? _current;

    public (BcCertificate Certificate, AsymmetricKeyParameter Key) Current(DateTimeOffset now)
    {
        lock (_gate)
        {
            if (_current is not { } current || now >= current.RenewAt)
            {
                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var organization = DeviceCertificates.OrganizationOf(operatorCa.Certificate);
                var caEnds = new DateTimeOffset(operatorCa.Certificate.NotAfter.ToUniversalTime());
                var notAfter = now + Lifetime < caEnds ? now + Lifetime : caEnds;
                using var issued = operatorCa.Issue(new X500DistinguishedName($"CN={commonName}, O={organization}"), new PublicKey(key), usage, now.AddMinutes(-5), notAfter);
                current = (new BcCertificate(issued.RawData), PrivateKeyFactory.CreateKey(key.ExportPkcs8PrivateKey()), now + (notAfter - now) / 2);
                _current = current;
            }

            return (current.Certificate, current.Key);
        }
    }
}

/// <summary>Signs OCSP answers (id-kp-OCSPSigning, id-pkix-ocsp-nocheck).</summary>
public sealed class OcspSigner(CertificateAuthority operatorCa) : DelegatedSigner(operatorCa, CertificateUsage.OcspSigning, "OCSP responder");

/// <summary>Protects CMP responses as the operator's registration authority (id-kp-cmcRA).</summary>
public sealed class CmpSigner(CertificateAuthority operatorCa) : DelegatedSigner(operatorCa, CertificateUsage.CmpRa, "CMP RA");
