using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.AllowList.Redis;
using KtZeroTrust.Gateway.Identity;
using KtZeroTrust.Gateway.Enforcement;
using KtZeroTrust.Gateway.Forwarding;
using KtZeroTrust.Gateway.Policy;
using KtZeroTrust.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

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
            .Validate(o => o.Handshakes is { MaxConcurrent: >= 1, MaxWaiting: >= 0 } h && h.MaxWait >= TimeSpan.Zero && h.MaxWait <= TimeSpan.FromSeconds(30),
                "ZeroTrust:Gateway:Handshakes: MaxConcurrent at least 1, MaxWaiting at least 0, MaxWait between 0 and 30 s.")
            .ValidateOnStart();
        services.AddZeroTrustNode(configuration);
        services.TryAddSingleton<DeviceCertificateValidator>();
        services.TryAddSingleton<DeviceTlsHandshake>();
        services.TryAddSingleton<DeviceHandshakeAdmission>();
        services.AddSingleton<KtZeroTrust.Hosting.Metrics.INodeMetricSource>(sp => sp.GetRequiredService<DeviceHandshakeAdmission>());
        services.TryAddSingleton<DeviceConnectionTracker>();
        services.AddOptions<CloneDetectionOptions>().Bind(configuration.GetSection(CloneDetectionOptions.SectionName))
            .Validate(o => o.IsValid, CloneDetectionOptions.Requirement)
            .ValidateOnStart();
        services.TryAddSingleton<CloneDetector>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<KtZeroTrust.Hosting.Listeners.IResponseFailureClassifier, ForwarderFailureClassifier>());
        services.AddAllowList(configuration);
        services.AddUserGateway(configuration);

        return services.AddReverseProxy()
            .LoadFromConfig(configuration.GetSection("ReverseProxy"))
            .AddConfigFilter<ZeroTrustProxyConfigFilter>()
            .AddTransforms<IdentityHeadersTransformProvider>();
    }
}

internal static class AllowListServiceCollectionExtensions
{
    /// <summary>
    /// The allow list: embedded (L1 fed from the registry) when <c>ZeroTrust:AllowList:Redis</c> is empty, otherwise L1
    /// in front of Redis in front of the registry, with pushed invalidations.
    /// </summary>
    public static IServiceCollection AddAllowList(this IServiceCollection services, IConfiguration configuration)
    {
        var section = configuration.GetSection(AllowListOptions.SectionName);
        services.AddOptions<AllowListOptions>().Bind(section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AllowListOptions>, AllowListOptionsValidator>());
        services.TryAddSingleton(sp => new AllowListCache(sp.GetRequiredService<IOptions<AllowListOptions>>().Value.NegativeCacheSize));
        services.TryAddSingleton<AllowListUpdates>();
        if (string.IsNullOrWhiteSpace(section[nameof(AllowListOptions.Redis)]))
        {
            services.TryAddSingleton(sp => new DeviceRequestAuthorizer(sp.GetRequiredService<AllowListCache>()));
            services.TryAddSingleton<RegistryAllowListFeed>();
            services.AddHostedService<AllowListRefreshService>();
        }
        else
        {
            services.TryAddSingleton<KtZeroTrust.Redis.RedisConnections>();
            services.TryAddSingleton<GatewayRedis>();
            services.TryAddSingleton<IAllowListResolver, RedisAllowListResolver>();
            services.TryAddSingleton(sp => new DeviceRequestAuthorizer(
                sp.GetRequiredService<AllowListCache>(), sp.GetRequiredService<IAllowListResolver>(), sp.GetRequiredService<IOptions<AllowListOptions>>().Value));
            services.AddHostedService<RedisAllowListSyncService>();
        }

        return services;
    }
}

internal sealed class AllowListOptionsValidator : IValidateOptions<AllowListOptions>
{
    public ValidateOptionsResult Validate(string? name, AllowListOptions options)
    {
        var errors = new List<string>();
        if (!string.IsNullOrWhiteSpace(options.Redis))
        {
            try
            {
                KtZeroTrust.Redis.RedisConfiguration.Parse(options.Redis);
            }
            catch (FormatException ex)
            {
                errors.Add($"ZeroTrust:AllowList:Redis: {ex.Message}");
            }
        }

        if (options.RegistryPollInterval < TimeSpan.FromMilliseconds(50))
        {
            errors.Add("ZeroTrust:AllowList:RegistryPollInterval must be at least 50 ms.");
        }

        if (options.FeedProbeTimeout < TimeSpan.FromMilliseconds(100) || options.FeedProbeTimeout > TimeSpan.FromMinutes(1))
        {
            errors.Add("ZeroTrust:AllowList:FeedProbeTimeout must be between 100 ms and 1 minute.");
        }

        if (options.MaxStaleness < TimeSpan.Zero)
        {
            errors.Add("ZeroTrust:AllowList:MaxStaleness must not be negative.");
        }

        if (options.NegativeCacheSize < 0 || options.MaxConcurrentLookups < 1)
        {
            errors.Add("ZeroTrust:AllowList:NegativeCacheSize must be >= 0 and MaxConcurrentLookups >= 1.");
        }

        if (string.IsNullOrEmpty(options.KeyPrefix))
        {
            errors.Add("ZeroTrust:AllowList:KeyPrefix must not be empty.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal static class UserGatewayServiceCollectionExtensions
{
    /// <summary>
    /// The user gateway: OIDC access tokens validated by the standard JwtBearer handler (discovery document, JWKS,
    /// issuer, audience, lifetime with a small skew, asymmetric algorithms only, keys fetched again on an unknown key id),
    /// per-route policies with hot reload, and the signed assertion for upstreams.
    /// </summary>
    public static IServiceCollection AddUserGateway(this IServiceCollection services, IConfiguration configuration)
    {
        var section = configuration.GetSection(UserGatewayOptions.SectionName);
        services.AddOptions<UserGatewayOptions>().Bind(section)
            .Validate(o => string.IsNullOrEmpty(o.Authority) || !string.IsNullOrEmpty(o.Audience), "ZeroTrust:Users:Audience is required with an Authority.")
            .Validate(o => string.IsNullOrEmpty(o.Authority) || !o.EntraId.Enabled, "ZeroTrust:Users: set either Authority (a generic OIDC provider) or EntraId (TenantId and ClientId), not both.")
            .Validate(o => string.IsNullOrEmpty(o.EntraId.TenantId) == string.IsNullOrEmpty(o.EntraId.ClientId), "ZeroTrust:Users:EntraId needs both TenantId and ClientId.")
            .Validate(o => string.IsNullOrEmpty(o.IdentityProviderCaFile) || File.Exists(o.IdentityProviderCaFile), "ZeroTrust:Users:IdentityProviderCaFile does not exist.")
            .Validate(o => o.AssertionLifetime > TimeSpan.Zero && o.AssertionLifetime <= TimeSpan.FromMinutes(10), "ZeroTrust:Users:AssertionLifetime must be between 0 and 10 minutes.")
            .ValidateOnStart();
        services.TryAddSingleton<PolicyStore>();
        services.TryAddSingleton<GatewayAssertions>();
        services.TryAddSingleton<UserAuthenticator>();
        services.TryAddSingleton<UserRateLimiter>();
        var users = section.Get<UserGatewayOptions>() ?? new UserGatewayOptions();
        if (!users.EntraId.Enabled)
        {
            // A generic OIDC provider: plain JwtBearer. (Entra ID is registered by KtZeroTrust.Gateway.EntraId.)
            services.AddAuthentication().AddJwtBearer(UserAuthenticator.Scheme, jwt =>
            {
                jwt.Authority = string.IsNullOrEmpty(users.Authority) ? null : users.Authority;
                jwt.Audience = users.Audience;
                UserTokenValidation.Configure(jwt, users);
            });
        }

        // After JwtBearer's own post-configuration has created the configuration manager: no "last known good" key set.
        // IdentityModel would otherwise validate a token whose key the provider has removed against the previous key
        // set for up to an hour. A removed key is a refused key (token_key_unknown) as soon as the refreshed set lacks it.
        services.PostConfigure<Microsoft.AspNetCore.Authentication.JwtBearer.JwtBearerOptions>(UserAuthenticator.Scheme, jwt =>
        {
            if (jwt.ConfigurationManager is Microsoft.IdentityModel.Tokens.BaseConfigurationManager manager)
            {
                manager.UseLastKnownGoodConfiguration = false;
            }
        });
        return services;
    }
}
