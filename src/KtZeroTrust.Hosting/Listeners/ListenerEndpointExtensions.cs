using KtZeroTrust.Hosting.Listeners;
using Microsoft.AspNetCore.Connections.Features;
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
        var name = ListenerContext.Name(kind);
        listenOptions.Use(next => connection =>
        {
            ListenerContext.Set(connection.Items, kind);
            if (connection.Features.Get<IConnectionMetricsTagsFeature>() is { } tags)
            {
                // Read back by the gateway's connection refusal recorder when Kestrel ends the connection over a request it refused.
                tags.Tags.Add(new(ListenerContext.ListenerTag, name));
                if (connection.RemoteEndPoint is System.Net.IPEndPoint peer)
                {
                    tags.Tags.Add(new(ListenerContext.PeerTag, peer)); // formatted only if it is ever a refusal
                }
            }

            return next(connection);
        });
        return listenOptions;
    }
}
