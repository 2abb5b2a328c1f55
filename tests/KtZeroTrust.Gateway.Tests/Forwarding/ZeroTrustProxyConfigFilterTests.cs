using KtZeroTrust.Gateway.Forwarding;
using KtZeroTrust.Hosting.Listeners;
using Yarp.ReverseProxy.Configuration;

namespace KtZeroTrust.Gateway.Tests.Forwarding;

public sealed class ZeroTrustProxyConfigFilterTests
{
    private readonly ZeroTrustProxyConfigFilter _filter = new();

    [Theory]
    [InlineData("Device", ListenerKind.Device)]
    [InlineData(" user ", ListenerKind.User)]
    public async Task Route_WithListenerMetadata_IsAccepted(string value, ListenerKind kind)
    {
        var route = new RouteConfig { RouteId = "r", Metadata = new Dictionary<string, string> { ["ZeroTrust.Listener"] = value } };

        await _filter.ConfigureRouteAsync(route, null, TestContext.Current.CancellationToken);

        Assert.Equal(kind, ZeroTrustProxyConfigFilter.GetListener(route));
    }

    [Fact]
    public async Task Route_WithoutListenerMetadata_IsRefusedNotGuessed()
    {
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(async () => await _filter.ConfigureRouteAsync(new RouteConfig { RouteId = "r" }, null, TestContext.Current.CancellationToken));
        Assert.StartsWith("ZT-CFG-002", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Route_WithUnknownListener_IsRefused()
    {
        var route = new RouteConfig { RouteId = "r", Metadata = new Dictionary<string, string> { ["ZeroTrust.Listener"] = "Console" } };
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(async () => await _filter.ConfigureRouteAsync(route, null, TestContext.Current.CancellationToken));
        Assert.StartsWith("ZT-CFG-003", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cluster_WithHashCookieAffinity_IsAccepted()
    {
        // YARP 2.3 comes with System.IO.Hashing, so the policy the old deployment had to refuse now works.
        var cluster = new ClusterConfig { ClusterId = "c", SessionAffinity = new SessionAffinityConfig { Enabled = true, Policy = "HashCookie", AffinityKeyName = "k" } };
        Assert.Same(cluster, await _filter.ConfigureClusterAsync(cluster, TestContext.Current.CancellationToken));
    }

    [Fact]
    public void ListenerMetadata_AllowsOnlyDeclaredListeners()
    {
        var metadata = new ListenerMetadata(ListenerKind.Enrollment, ListenerKind.Console);
        Assert.True(metadata.Allows(ListenerKind.Console));
        Assert.False(metadata.Allows(ListenerKind.Device));
        Assert.False(metadata.Allows(ListenerKind.Internal));
    }
}
