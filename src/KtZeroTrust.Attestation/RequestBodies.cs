using Microsoft.AspNetCore.Http;

namespace KtZeroTrust.Attestation;

/// <summary>The one way the enrollment listener reads a request body (EST, OCSP, CMP): at most a limit, never more in memory.</summary>
internal static class RequestBodies
{
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
