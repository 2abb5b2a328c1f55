using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Pki.Certificates;
using Org.BouncyCastle.Crypto;
using BcCertificate = Org.BouncyCastle.X509.X509Certificate;

namespace KtZeroTrust.Attestation.Signing;

/// <summary>
/// A signing certificate the operator CA delegates one purpose to, for a key that lives only in this process's memory,
/// renewed when half of its day is over: no signing key on disk, and a stolen one is worthless within a day. The CA's
/// own key signs certificates only. The key is .NET's (OpenSSL), wrapped for BouncyCastle's builders
/// (<see cref="EcdsaSignatures"/>); a renewed-away key is left to the finalizer, as an answer may still be signing with it.
/// </summary>
public abstract class DelegatedSigner(CertificateAuthority operatorCa, CertificateUsage usage, string commonName)
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromDays(1);
    private readonly Lock _gate = new();
    private (BcCertificate Certificate, ISignatureFactory Signer, DateTimeOffset RenewAt)? _current;

    public (BcCertificate Certificate, ISignatureFactory Signer) Current(DateTimeOffset now)
    {
        lock (_gate)
        {
            if (_current is not { } current || now >= current.RenewAt)
            {
#pragma warning disable CA2000 // lives as long as its certificate, see above
                var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
#pragma warning restore CA2000
                var organization = DeviceCertificates.OrganizationOf(operatorCa.Certificate);
                var caEnds = new DateTimeOffset(operatorCa.Certificate.NotAfter.ToUniversalTime());
                var notAfter = now + Lifetime < caEnds ? now + Lifetime : caEnds;
                using var issued = operatorCa.Issue(new X500DistinguishedName($"CN={commonName}, O={organization}"), new PublicKey(key), usage, now.AddMinutes(-5), notAfter);
                current = (new BcCertificate(issued.RawData), EcdsaSignatures.Signer(key), now + (notAfter - now) / 2);
                _current = current;
            }

            return (current.Certificate, current.Signer);
        }
    }
}

/// <summary>Signs OCSP answers (id-kp-OCSPSigning, id-pkix-ocsp-nocheck).</summary>
public sealed class OcspSigner(CertificateAuthority operatorCa) : DelegatedSigner(operatorCa, CertificateUsage.OcspSigning, "OCSP responder");

/// <summary>Protects CMP responses as the operator's registration authority (id-kp-cmcRA).</summary>
public sealed class CmpSigner(CertificateAuthority operatorCa) : DelegatedSigner(operatorCa, CertificateUsage.CmpRa, "CMP RA");
