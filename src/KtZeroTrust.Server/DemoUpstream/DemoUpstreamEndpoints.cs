using KtZeroTrust.Gateway.Listeners;

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
            var identity = new SortedDictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var (name, value) in context.Request.Headers)
            {
                if (name.StartsWith("X-ZT-", StringComparison.OrdinalIgnoreCase) || name.Equals("X-Forwarded-Client-Cert", StringComparison.OrdinalIgnoreCase))
                {
                    identity[name] = value.ToString();
                }
            }

            return Results.Json(new DemoUpstreamReply(
                "femtocell-management (KtZeroTrust demo upstream)",
                context.Request.Method,
                context.Request.Path.Value ?? "/",
                context.Request.Headers["X-ZT-Device-Id"].ToString(),
                context.Request.Headers["X-ZT-Decision-Id"].ToString(),
                identity));
        }).RequireListener(ListenerKind.Internal);
}

internal sealed record DemoUpstreamReply(string Service, string Method, string Path, string DeviceId, string DecisionId, IDictionary<string, string> IdentityHeaders);
