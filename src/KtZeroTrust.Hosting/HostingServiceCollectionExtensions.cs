using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Hosting.Decisions;
using KtZeroTrust.Hosting.Devices;
using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Hosting.Node;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Hosting;

public static class HostingServiceCollectionExtensions
{
    /// <summary>
    /// What every role shares: the node's options (validated on start), the one decision factory stamped with the
    /// node's name, the HTTP decision recorder, the quarantine, the clock, and listener routing.
    /// </summary>
    public static IServiceCollection AddZeroTrustNode(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (services.Any(d => d.ServiceType == typeof(DecisionRecorder)))
        {
            return services; // every role calls this; the first call registers
        }

        services.AddOptions<NodeOptions>().Bind(configuration.GetSection(NodeOptions.SectionName)).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new DecisionFactory(sp.GetRequiredService<IOptions<NodeOptions>>().Value.Name, sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<DecisionRecorder>();
        services.TryAddSingleton<DeviceQuarantine>();
        services.AddHostedService<ConnectionRefusalRecorder>(); // every listener's refusals below the application
        return services.AddListenerRouting();
    }

    /// <summary>Endpoints pinned to listeners (<see cref="ListenerEndpointExtensions.RequireListener"/>) match only there.</summary>
    public static IServiceCollection AddListenerRouting(this IServiceCollection services)
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<MatcherPolicy, ListenerMatcherPolicy>());
        return services;
    }
}
