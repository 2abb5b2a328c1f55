using KtZeroTrust.Gateway.Enforcement;
using KtZeroTrust.Gateway.Forwarding;
using KtZeroTrust.Hosting.Listeners;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Microsoft.AspNetCore.Builder;

public static class GatewayEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the proxied routes. Enforcement is pinned first in the proxy pipeline and cannot be configured away; each
    /// route answers only on the listener its metadata names.
    /// </summary>
    public static ReverseProxyConventionBuilder MapZeroTrustGateway(this IEndpointRouteBuilder endpoints)
    {
        var builder = endpoints.MapReverseProxy(proxy =>
        {
            UseEnforcement(proxy);
            proxy.UseSessionAffinity();
            proxy.UseLoadBalancing();
            proxy.UsePassiveHealthChecks();
        });
        builder.ConfigureEndpoints((endpoint, route) => endpoint.WithMetadata(new ListenerMetadata(ZeroTrustProxyConfigFilter.GetListener(route))));

        // Requests on the device listener that no route serves still get an identity check and a recorded decision.
        var fallback = endpoints.CreateApplicationBuilder();
        UseEnforcement(fallback);
        // "{**path}", not MapFallback's default "{*path:nonfile}": a last segment with a dot (/.env, /x.php) must land here too.
        endpoints.MapFallback("{**path}", fallback.Build()).RequireListener(ListenerKind.Device, ListenerKind.User);

        // The gateway assertion's public keys, for upstreams to verify X-ZT-Assertion.
        endpoints.MapGet("/.well-known/jwks.json", (GatewayAssertions assertions) => Results.Text(assertions.Jwks, "application/jwk-set+json"))
            .RequireListener(ListenerKind.User, ListenerKind.Console);
        return builder;
    }

    /// <summary>One enforcement middleware per listener: the user listener's checks tokens, every other one's devices.</summary>
    private static void UseEnforcement(IApplicationBuilder app)
    {
        app.UseWhen(IsUser, user => user.UseMiddleware<UserEnforcementMiddleware>());
        app.UseWhen(context => !IsUser(context), device => device.UseMiddleware<DeviceEnforcementMiddleware>());
    }

    private static bool IsUser(HttpContext context) => ListenerContext.Get(context) == ListenerKind.User;
}
