using System.Net.Http.Headers;
using Microsoft.AspNetCore.Http;

namespace KtZeroTrust.Attestation;

/// <summary>
/// The one way the enrollment listener reads a request body (EST, OCSP, CMP): its media type, at most a limit of bytes
/// (never more in memory), and which exceptions from decoding it mean "the sender's bytes are bad".
/// </summary>
internal static class RequestBodies
{
    /// <summary>The request's media type without parameters, or null when it has none or it does not parse.</summary>
    public static string? MediaType(HttpRequest request)
        => MediaTypeHeaderValue.TryParse(request.ContentType, out var parsed) ? parsed.MediaType : null;

    public static bool HasMediaType(HttpRequest request, string mediaType)
        => string.Equals(MediaType(request), mediaType, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// An exception that decoding untrusted DER (BouncyCastle's ASN.1, CMP, OCSP and CRMF types; .NET's certificate and
    /// key readers) throws for bytes that are not what they claim: answered as a malformed request, never a 500.
    /// </summary>
    public static bool IsUndecodable(Exception exception)
        => exception is IOException or FormatException or ArgumentException or InvalidCastException or InvalidOperationException
            or Org.BouncyCastle.Asn1.Asn1Exception or System.Security.Cryptography.CryptographicException or System.Formats.Asn1.AsnContentException
            or Org.BouncyCastle.Security.SecurityUtilityException or Org.BouncyCastle.Security.GeneralSecurityException;

    /// <summary>The body, or null when it is (or announces itself) larger than <paramref name="limit"/> bytes.</summary>
    public static async Task<byte[]?> ReadAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit)
        {
            return null;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }
}
