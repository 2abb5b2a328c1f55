using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Matching;

namespace KtZeroTrust.Hosting.Listeners;

/// <summary>
/// Routing policy that keeps an endpoint from matching on any listener it did not declare, the way
/// HostMatcherPolicy filters by host, but on the connection's listener (which a client cannot forge).
/// An endpoint without <see cref="ListenerMetadata"/> matches nowhere: default deny.
/// </summary>
internal sealed class ListenerMatcherPolicy : MatcherPolicy, IEndpointSelectorPolicy
{
    // Run before the other policies so that later ones (HTTP method) never see a foreign listener's endpoints.
    public override int Order => -1000;

    public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) => endpoints.Count > 0;

    public Task ApplyAsync(HttpContext httpContext, CandidateSet candidates)
    {
        var listener = ListenerContext.Get(httpContext);
        for (var i = 0; i < candidates.Count; i++)
        {
            if (!candidates.IsValidCandidate(i))
            {
                continue;
            }

            var metadata = candidates[i].Endpoint.Metadata.GetMetadata<ListenerMetadata>();
            if (listener is null || metadata is null || !metadata.Allows(listener.Value))
            {
                candidates.SetValidity(i, false);
            }
        }

        return Task.CompletedTask;
    }
}
