using KtZeroTrust.Hosting.Listeners;
using Yarp.ReverseProxy.Configuration;

namespace KtZeroTrust.Gateway.Forwarding;

/// <summary>
/// Validates the standard <c>ReverseProxy</c> configuration against what this build supports. A route must say which
/// listener serves it (<c>Metadata: { "ZeroTrust.Listener": "Device" }</c>); a route that does not is refused, never
/// guessed. Clusters pass unchanged: every YARP affinity and load-balancing policy is supported.
/// On reload a refused configuration leaves the previous one serving (YARP's behaviour for a failing filter).
/// </summary>
internal sealed class ZeroTrustProxyConfigFilter : IProxyConfigFilter
{
    public const string ListenerMetadataKey = "ZeroTrust.Listener";

    public ValueTask<ClusterConfig> ConfigureClusterAsync(ClusterConfig cluster, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        return ValueTask.FromResult(cluster);
    }

    public ValueTask<RouteConfig> ConfigureRouteAsync(RouteConfig route, ClusterConfig? cluster, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(route);
        _ = GetListener(route);
        return ValueTask.FromResult(route);
    }

    public static ListenerKind GetListener(RouteConfig route)
    {
        ArgumentNullException.ThrowIfNull(route);
        if (route.Metadata is null || !route.Metadata.TryGetValue(ListenerMetadataKey, out var value) || string.IsNullOrWhiteSpace(value))
        {
            throw new InvalidOperationException($"ZT-CFG-002: route '{route.RouteId}' has no '{ListenerMetadataKey}' metadata; set it to 'Device' or 'User'. Routes are never exposed by default.");
        }

        return value.Trim().ToUpperInvariant() switch
        {
            "DEVICE" => ListenerKind.Device,
            "USER" => ListenerKind.User,
            _ => throw new InvalidOperationException($"ZT-CFG-003: route '{route.RouteId}' has '{ListenerMetadataKey}' = '{value}'; expected 'Device' or 'User'."),
        };
    }
}
