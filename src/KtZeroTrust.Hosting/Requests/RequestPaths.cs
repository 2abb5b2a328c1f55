using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace KtZeroTrust.Hosting.Requests;

public static class RequestPaths
{
    /// <summary>
    /// Encoded dots, slashes or backslashes, or double encoding, in the raw target: refused rather than guessed at,
    /// so no spelling of a path can land on a route other than the one a plain reading names. Every proxied listener
    /// applies it (device and user routes alike).
    /// </summary>
    public static bool IsAmbiguous(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var raw = request.HttpContext.Features.Get<IHttpRequestFeature>()?.RawTarget ?? request.Path.Value ?? "";
        var query = raw.IndexOf('?', StringComparison.Ordinal);
        var path = query >= 0 ? raw.AsSpan(0, query) : raw.AsSpan();
        return path.Contains("%2e", StringComparison.OrdinalIgnoreCase) || path.Contains("%2f", StringComparison.OrdinalIgnoreCase)
            || path.Contains("%5c", StringComparison.OrdinalIgnoreCase) || path.Contains("%25", StringComparison.Ordinal)
            || path.Contains('\\') || path.Contains("/./", StringComparison.Ordinal) || path.Contains("/../", StringComparison.Ordinal)
            || path.EndsWith("/..", StringComparison.Ordinal) || path.EndsWith("/.", StringComparison.Ordinal);
    }
}
