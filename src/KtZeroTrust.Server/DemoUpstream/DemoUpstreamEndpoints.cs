using KtZeroTrust.Hosting.Listeners;

namespace KtZeroTrust.Server.DemoUpstream;

/// <summary>
/// A stand-in for a femtocell management service behind the gateway. It answers on the loopback-only internal
/// listener and echoes the identity headers it received, so a walkthrough shows what an upstream sees.
/// </summary>
internal static class DemoUpstreamEndpoints
{
    public static IEndpointConventionBuilder MapDemoUpstream(this IEndpointRouteBuilder endpoints)
        => endpoints.Map("/{**path}", (HttpContext context) =>
        {
            // Read the way a CGI-style framework reads headers (underscores as hyphens), so spoofed spellings show.
            var identity = new SortedDictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            var forwarded = new SortedDictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var (name, value) in context.Request.Headers)
            {
                var cgi = name.Replace('_', '-');
                if (cgi.StartsWith("X-ZT-", StringComparison.OrdinalIgnoreCase) || cgi.Equals("X-Forwarded-Client-Cert", StringComparison.OrdinalIgnoreCase))
                {
                    identity[name] = value.ToString();
                }
                else if (cgi.StartsWith("X-Forwarded-", StringComparison.OrdinalIgnoreCase))
                {
                    forwarded[name] = value.ToString();
                }
            }

            return Results.Json(new DemoUpstreamReply(
                "femtocell-management (KtZeroTrust demo upstream)",
                context.Request.Method,
                context.Request.Path.Value ?? "/",
                context.Request.Headers["X-ZT-Device-Id"].ToString(),
                context.Request.Headers["X-ZT-Decision-Id"].ToString(),
                identity,
                forwarded));
        }).RequireListener(ListenerKind.Internal);
}

internal sealed record DemoUpstreamReply(string Service, string Method, string Path, string DeviceId, string DecisionId, IDictionary<string, string> IdentityHeaders, IDictionary<string, string> ForwardedHeaders);
