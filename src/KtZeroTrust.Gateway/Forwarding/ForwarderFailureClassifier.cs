using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Hosting.Problems;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace KtZeroTrust.Gateway.Forwarding;

/// <summary>
/// An allowed request that YARP forwarded and that then failed (the client's body too slow, the upstream down): the
/// refusal recorder records a second decision with this reason. The one place the recorder needs YARP's view.
/// </summary>
internal sealed class ForwarderFailureClassifier : IResponseFailureClassifier
{
    public ResponseFailure? Classify(HttpContext context, int status)
    {
        if (context.Features.Get<IForwarderErrorFeature>() is not { } forwarding)
        {
            return null;
        }

        var reason = forwarding.Error is ForwarderError.RequestBodyClient or ForwarderError.RequestCanceled ? ProblemResponses.ReasonFor(status)
            : status >= 500 ? ReasonCode.UpstreamUnavailable : ProblemResponses.ReasonFor(status);
        return new ResponseFailure(reason, "forwarding failed: " + forwarding.Error);
    }
}
