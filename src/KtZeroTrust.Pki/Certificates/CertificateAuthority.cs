using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KtZeroTrust.Pki.Certificates;

/// <summary>A CA certificate with its key that issues ECDSA P-256 certificates.</summary>
public sealed class CertificateAuthority : IDisposable
{
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";
    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    private const string OcspSigningOid = "1.3.6.1.5.5.7.3.9";
    private const string OcspNoCheckOid = "1.3.6.1.5.5.7.48.1.5";
    private const string CmcRaOid = "1.3.6.1.5.5.7.3.28";

    private readonly ECDsa _key;

    public CertificateAuthority(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        Certificate = certificate;
        _key = certificate.GetECDsaPrivateKey()
            ?? throw new PkiException(PkiException.MalformedFile, $"The CA certificate '{certificate.Subject}' has no ECDSA private key.");
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>Creates a self-signed root CA.</summary>
    public static CertificateAuthority CreateRoot(string subject, TimeSpan lifetime, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 1, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = timeProvider.GetUtcNow();
        return new CertificateAuthority(request.CreateSelfSigned(now.AddMinutes(-5), now.Add(lifetime)));
    }

    /// <summary>Issues an end-entity certificate for <paramref name="publicKey"/>.</summary>
    public X509Certificate2 Issue(X500DistinguishedName subject, PublicKey publicKey, CertificateUsage usage,
        DateTimeOffset notBefore, DateTimeOffset notAfter, IEnumerable<string>? dnsNames = null,
        IEnumerable<System.Net.IPAddress>? ipAddresses = null, Uri? uri = null, IEnumerable<string>? crlDistributionPoints = null,
        IEnumerable<string>? ocspResponders = null, IEnumerable<X509Extension>? extensions = null)
    {
        ArgumentNullException.ThrowIfNull(subject);
        ArgumentNullException.ThrowIfNull(publicKey);
        if (notAfter <= notBefore)
        {
            throw new PkiException(PkiException.PolicyViolation, "A certificate's notAfter must be later than its notBefore.");
        }

        if (notAfter > Certificate.NotAfter.ToUniversalTime())
        {
            throw new PkiException(PkiException.PolicyViolation, $"The certificate would outlive its issuer (CA expires {Certificate.NotAfter:u}).");
        }

        var request = new CertificateRequest(subject, publicKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        var eku = new OidCollection();
        if (usage.HasFlag(CertificateUsage.ClientAuth))
        {
            eku.Add(new Oid(ClientAuthOid));
        }

        if (usage.HasFlag(CertificateUsage.ServerAuth))
        {
            eku.Add(new Oid(ServerAuthOid));
        }

        if (usage.HasFlag(CertificateUsage.OcspSigning))
        {
            eku.Add(new Oid(OcspSigningOid));
            // id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1): a client does not ask about the responder's own certificate;
            // it is short-lived instead (the responder issues itself a new one long before this one ends).
            request.CertificateExtensions.Add(new X509Extension(OcspNoCheckOid, [0x05, 0x00], false));
        }

        if (usage.HasFlag(CertificateUsage.CmpRa))
        {
            eku.Add(new Oid(CmcRaOid));
        }

        if (eku.Count > 0)
        {
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(eku, false));
        }

        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));

        var san = new SubjectAlternativeNameBuilder();
        var hasSan = false;
        foreach (var dns in dnsNames ?? [])
        {
            san.AddDnsName(dns);
            hasSan = true;
        }

        foreach (var ip in ipAddresses ?? [])
        {
            san.AddIpAddress(ip);
            hasSan = true;
        }

        if (uri is not null)
        {
            san.AddUri(uri);
            hasSan = true;
        }

        if (hasSan)
        {
            request.CertificateExtensions.Add(san.Build());
        }

        if (crlDistributionPoints?.ToList() is { Count: > 0 } crls)
        {
            request.CertificateExtensions.Add(CertificateRevocationListBuilder.BuildCrlDistributionPointExtension(crls));
        }

        if (ocspResponders?.ToList() is { Count: > 0 } responders)
        {
            request.CertificateExtensions.Add(new X509AuthorityInformationAccessExtension(responders, caIssuersUris: null));
        }

        foreach (var extension in extensions ?? [])
        {
            request.CertificateExtensions.Add(extension);
        }

        var serial = new byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] = (byte)((serial[0] & 0x7F) | 0x40); // a positive INTEGER of 16 bytes exactly: no leading zero to trim
        var generator = X509SignatureGenerator.CreateForECDsa(_key);
        return request.Create(Certificate.SubjectName, generator, notBefore, notAfter, serial);
    }

    /// <summary>Issues a certificate with a freshly generated P-256 key; the result carries the private key.</summary>
    public X509Certificate2 IssueWithNewKey(X500DistinguishedName subject, CertificateUsage usage,
        DateTimeOffset notBefore, DateTimeOffset notAfter, IEnumerable<string>? dnsNames = null,
        IEnumerable<System.Net.IPAddress>? ipAddresses = null, Uri? uri = null, IEnumerable<X509Extension>? extensions = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var cert = Issue(subject, new PublicKey(key), usage, notBefore, notAfter, dnsNames, ipAddresses, uri, extensions: extensions);
        return cert.CopyWithPrivateKey(key);
    }

    /// <summary>Signs a CRL listing <paramref name="revoked"/> (serial number hex, revocation time, reason).</summary>
    public byte[] BuildCrl(IEnumerable<(string SerialNumber, DateTimeOffset RevokedAt, X509RevocationReason Reason)> revoked, long crlNumber,
        DateTimeOffset thisUpdate, TimeSpan validity)
    {
        ArgumentNullException.ThrowIfNull(revoked);
        var builder = new CertificateRevocationListBuilder();
        foreach (var (serial, at, reason) in revoked)
        {
            builder.AddEntry(Convert.FromHexString(serial), at, reason);
        }

        return builder.Build(Certificate, new System.Numerics.BigInteger(crlNumber), thisUpdate.Add(validity), HashAlgorithmName.SHA256, thisUpdate: thisUpdate);
    }

    public void Dispose()
    {
        _key.Dispose();
        Certificate.Dispose();
    }
}

[Flags]
public enum CertificateUsage
{
    None = 0,
    ClientAuth = 1,
    ServerAuth = 2,

    /// <summary>A delegated OCSP responder (id-kp-OCSPSigning, with id-pkix-ocsp-nocheck).</summary>
    OcspSigning = 4,

    /// <summary>The CMP registration authority that protects our CMP responses (id-kp-cmcRA, RFC 6402).</summary>
    CmpRa = 8,
}
