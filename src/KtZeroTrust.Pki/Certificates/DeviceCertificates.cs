using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Core.Devices;

namespace KtZeroTrust.Pki.Certificates;

/// <summary>The operational device certificate (LDevID) profile: one per device, short-lived, clientAuth.</summary>
public static class DeviceCertificates
{
    /// <summary>Operational certificates never live longer than this (the post-incident rule is one month).</summary>
    public static readonly TimeSpan AbsoluteMaxLifetime = TimeSpan.FromDays(30);

    public const string DeviceUriPrefix = "urn:ktzerotrust:device:";

    public static X500DistinguishedName Subject(string serial, string organization)
    {
        DeviceSerial.Validate(serial);
        var builder = new X500DistinguishedNameBuilder();
        builder.AddOrganizationName(organization);
        builder.Add("2.5.4.5", serial, System.Formats.Asn1.UniversalTagNumber.PrintableString);
        builder.AddCommonName(serial);
        return builder.Build();
    }

    public static Uri DeviceUri(string serial) => new(DeviceUriPrefix + serial);

    /// <summary>Issues an LDevID for <paramref name="serial"/> with a new key, refusing lifetimes beyond policy.</summary>
    public static X509Certificate2 IssueOperational(CertificateAuthority ca, string serial, TimeSpan lifetime, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(ca);
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (lifetime <= TimeSpan.Zero || lifetime > AbsoluteMaxLifetime)
        {
            throw new PkiException(PkiException.PolicyViolation,
                $"An operational device certificate lives between 1 second and {AbsoluteMaxLifetime.TotalDays} days; {lifetime} was asked.");
        }

        var now = timeProvider.GetUtcNow();
        return ca.IssueWithNewKey(Subject(serial, OrganizationOf(ca.Certificate)), CertificateUsage.ClientAuth,
            now.AddMinutes(-1), now.Add(lifetime), uri: DeviceUri(serial), extensions: [RenewalHint.Create(now, now.Add(lifetime), Random.Shared)]);
    }

    /// <summary>The device serial a certificate names: the SAN URI first, else the subject serialNumber, else CN.</summary>
    public static string? SerialOf(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        foreach (var extension in certificate.Extensions)
        {
            if (extension is X509SubjectAlternativeNameExtension san)
            {
                foreach (var uri in EnumerateUris(san))
                {
                    if (uri.StartsWith(DeviceUriPrefix, StringComparison.Ordinal))
                    {
                        return uri[DeviceUriPrefix.Length..];
                    }
                }
            }
        }

        var serial = certificate.SubjectName.EnumerateRelativeDistinguishedNames()
            .FirstOrDefault(r => r.GetSingleElementType().Value == "2.5.4.5")?.GetSingleElementValue();
        return serial ?? certificate.GetNameInfo(X509NameType.SimpleName, false);
    }

    private static List<string> EnumerateUris(X509SubjectAlternativeNameExtension san)
    {
        // .NET exposes DNS names and IPs directly; URIs need the raw GeneralNames ([6] IA5String).
        var reader = new System.Formats.Asn1.AsnReader(san.RawData, System.Formats.Asn1.AsnEncodingRules.DER);
        var sequence = reader.ReadSequence();
        var uriTag = new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 6);
        var result = new List<string>();
        while (sequence.HasData)
        {
            var tag = sequence.PeekTag();
            if (tag == uriTag)
            {
                result.Add(sequence.ReadCharacterString(System.Formats.Asn1.UniversalTagNumber.IA5String, uriTag));
            }
            else
            {
                sequence.ReadEncodedValue();
            }
        }

        return result;
    }

    /// <summary>The organisation (O) a CA names, which the certificates it issues carry too.</summary>
    public static string OrganizationOf(X509Certificate2 ca)
        => ca.SubjectName.EnumerateRelativeDistinguishedNames()
            .FirstOrDefault(r => r.GetSingleElementType().Value == "2.5.4.10")?.GetSingleElementValue() ?? "KtZeroTrust Operator";
}
