using KtZeroTrust.Gateway.Listeners;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Microsoft.AspNetCore.Builder;

public static class ListenerEndpointExtensions
{
    /// <summary>Makes endpoints reachable only on the given listeners.</summary>
    public static TBuilder RequireListener<TBuilder>(this TBuilder builder, params ListenerKind[] listeners)
        where TBuilder : IEndpointConventionBuilder
        => builder.WithMetadata(new ListenerMetadata(listeners));

    /// <summary>Tags every connection accepted by this Kestrel endpoint with <paramref name="kind"/>.</summary>
    public static ListenOptions UseListenerKind(this ListenOptions listenOptions, ListenerKind kind)
    {
        ArgumentNullException.ThrowIfNull(listenOptions);
        listenOptions.Use(next => connection =>
        {
            ListenerContext.Set(connection.Items, kind);
            return next(connection);
        });
        return listenOptions;
    }
}
