using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;

namespace KtZeroTrust.Pki.Certificates;

/// <summary>
/// When a unit should renew its certificate: a non-critical extension holding <c>SEQUENCE { renewAfter GeneralizedTime }</c>,
/// a random point between <see cref="Earliest"/> and <see cref="Latest"/> of the certificate's lifetime. A fleet
/// enrolled in one storm then renews spread over 30% of the lifetime instead of all together at the same fraction.
/// A unit that does not read the extension follows the same rule itself (docs/attestation.md). The OID is a UUID arc
/// (ITU-T X.667, 2.25.&lt;uuid&gt;): unique without a registration.
/// </summary>
public static class RenewalHint
{
    public const string Oid = "2.25.238981701903245039407258823618269317618";

    /// <summary>The earliest point of the lifetime a hint names (a fraction of issue-to-notAfter).</summary>
    public const double Earliest = 0.5;

    /// <summary>The latest point: 20% of the lifetime is left to retry a renewal that failed.</summary>
    public const double Latest = 0.8;

    /// <summary>The extension for a certificate valid from <paramref name="issuedAt"/> to <paramref name="notAfter"/>, at a random point of the window.</summary>
    public static X509Extension Create(DateTimeOffset issuedAt, DateTimeOffset notAfter, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        // The window ends at the notAfter the certificate will carry: X.509 times are whole seconds.
        return Create(RandomPoint(issuedAt, new DateTimeOffset(notAfter.UtcTicks - (notAfter.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero), random));
    }

    public static X509Extension Create(DateTimeOffset renewAfter)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            // To the millisecond: units renewing a second apart are still spread (DER drops trailing zeros of the fraction).
            writer.WriteGeneralizedTime(new DateTimeOffset(renewAfter.UtcTicks - (renewAfter.UtcTicks % TimeSpan.TicksPerMillisecond), TimeSpan.Zero));
        }

        return new X509Extension(Oid, writer.Encode(), critical: false);
    }

    /// <summary>The hint a certificate carries; null without one, or with one that does not decode.</summary>
    public static DateTimeOffset? Read(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (certificate.Extensions[Oid] is not { } extension)
        {
            return null;
        }

        try
        {
            var reader = new AsnReader(extension.RawData, AsnEncodingRules.DER).ReadSequence();
            return reader.ReadGeneralizedTime();
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    /// <summary>When to renew: the certificate's hint, or (none) a random point of the window, chosen as the hint would be.</summary>
    public static DateTimeOffset RenewAt(X509Certificate2 certificate, DateTimeOffset issuedAt, Random random)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(random);
        return Read(certificate) ?? RandomPoint(issuedAt, certificate.NotAfter.ToUniversalTime(), random);
    }

    /// <summary>A uniformly random point between <see cref="Earliest"/> and <see cref="Latest"/> of [from, to].</summary>
    private static DateTimeOffset RandomPoint(DateTimeOffset from, DateTimeOffset to, Random random)
        => from + ((to - from) * (Earliest + ((Latest - Earliest) * random.NextDouble())));
}
