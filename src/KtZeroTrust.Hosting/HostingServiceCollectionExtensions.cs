using KtZeroTrust.Hosting.Listeners;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace KtZeroTrust.Hosting;

public static class HostingServiceCollectionExtensions
{
    /// <summary>Endpoints pinned to listeners (<see cref="ListenerEndpointExtensions.RequireListener"/>) match only there.</summary>
    public static IServiceCollection AddListenerRouting(this IServiceCollection services)
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<MatcherPolicy, ListenerMatcherPolicy>());
        return services;
    }
}
