using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Gateway;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.Certificates;
using KtZeroTrust.Gateway.Enforcement;
using KtZeroTrust.Gateway.Forwarding;
using KtZeroTrust.Gateway.Listeners;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

public static class GatewayServiceCollectionExtensions
{
    /// <summary>
    /// Adds the device gateway: certificate validation, the allow list fed from the registry, enforcement, and YARP
    /// loaded from the standard <c>ReverseProxy</c> section. The caller registers <see cref="DeviceTrust"/>, the server
    /// certificate context, an <see cref="KtZeroTrust.Core.AllowList.IAllowListSource"/> and an <see cref="IDecisionSink"/>.
    /// </summary>
    public static IReverseProxyBuilder AddZeroTrustGateway(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<DeviceGatewayOptions>()
            .Bind(configuration.GetSection(DeviceGatewayOptions.SectionName))
            .Validate(o => o.MaxCertificateLifetime > TimeSpan.Zero, "ZeroTrust:Gateway:MaxCertificateLifetime must be positive.")
            .Validate(o => o.ValidationCacheSize > 0, "ZeroTrust:Gateway:ValidationCacheSize must be positive.")
            .Validate(o => o.AllowListRefreshInterval >= TimeSpan.FromMilliseconds(50), "ZeroTrust:Gateway:AllowListRefreshInterval must be at least 50 ms.")
            .ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<DecisionIdGenerator>();
        services.TryAddSingleton<AllowListCache>();
        services.TryAddSingleton<DeviceCertificateValidator>();
        services.TryAddSingleton<DeviceRequestAuthorizer>();
        services.TryAddSingleton<DeviceTlsHandshake>();
        services.AddHostedService<AllowListRefreshService>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Microsoft.AspNetCore.Routing.MatcherPolicy, ListenerMatcherPolicy>());

        return services.AddReverseProxy()
            .LoadFromConfig(configuration.GetSection("ReverseProxy"))
            .AddConfigFilter<ZeroTrustProxyConfigFilter>()
            .AddTransforms<IdentityHeadersTransformProvider>();
    }
}
