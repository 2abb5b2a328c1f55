using System.Net;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.Identity;
using KtZeroTrust.Gateway.Policy;
using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Hosting.Decisions;
using KtZeroTrust.Hosting.Problems;
using KtZeroTrust.Hosting.Requests;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Model;

namespace KtZeroTrust.Gateway.Enforcement;

/// <summary>
/// Enforcement for proxied device requests (and any other listener's but the user listener's, which are denied),
/// pinned first in the YARP pipeline: the device from its TLS identity and the allow list, the clone check, an
/// unambiguous path, a route with a policy naming the device (default deny); every decision is posted, and only an
/// allowed request reaches the forwarder.
/// </summary>
internal sealed partial class DeviceEnforcementMiddleware(
    RequestDelegate next,
    DeviceRequestAuthorizer authorizer,
    CloneDetector cloneDetector,
    PolicyStore policies,
    DecisionRecorder recorder,
    TimeProvider timeProvider,
    ILogger<DeviceEnforcementMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var start = timeProvider.GetTimestamp();
        var now = timeProvider.GetUtcNow();
        var listener = ListenerContext.Get(context);
        var identity = DeviceTlsHandshake.GetIdentity(context.Features.Get<IConnectionItemsFeature>()?.Items);
        var authorization = listener == ListenerKind.Device
            ? await authorizer.AuthorizeAsync(identity, now.UtcTicks, context.RequestAborted)
            : new DeviceAuthorization(ReasonCode.RouteNotAllowed, default); // only device and user listeners are proxied
        var reason = authorization.Reason;
        var serial = authorization.Entry.DeviceSerial;

        if (reason == ReasonCode.Allowed && cloneDetector.IsClone(serial!, context.Connection.RemoteIpAddress, now.UtcTicks, out var cloneDetail))
        {
            reason = ReasonCode.CloneSuspected;
            SuspendAfterRefusal(context, serial!, cloneDetail!);
        }

        var decisionId = recorder.Make.NextId();
        var route = context.Features.Get<IReverseProxyFeature>()?.Route.Config.RouteId; // null on the fallback: no route serves the path
        var policySet = policies.Current;
        if (reason == ReasonCode.Allowed && RequestPaths.IsAmbiguous(context.Request))
        {
            reason = ReasonCode.PathRejected; // an encoded or dotted spelling: never matched to a route by guessing
        }
        else if (route is null)
        {
            // No proxied route matched (the fallback): a device probing paths nothing serves is denied and recorded.
            reason = reason == ReasonCode.Allowed ? ReasonCode.RouteNotAllowed : reason;
        }
        else if (reason == ReasonCode.Allowed)
        {
            // Default deny: a device route needs a policy, and the policy must name this device's model or site.
            reason = policySet.Find(route) is { } policy
                ? policy.EvaluateDevice(authorization.Entry.Model, authorization.Entry.Site, context.Request.Method, context.Connection.RemoteIpAddress)
                : ReasonCode.PolicyMissing;
        }

        recorder.Post(recorder.Make.Access(listener is { } kind ? ListenerContext.ForDecision(kind) : DecisionListener.Unknown, reason,
            serial ?? identity?.ClaimedSerial, recorder.Origin(context, route, start), identity?.HashHex, policySet.Version,
            reason is ReasonCode.DeviceSuspended or ReasonCode.DeviceRevoked or ReasonCode.DeviceDecommissioned ? authorization.Entry.StateReason : null, decisionId));

        if (reason != ReasonCode.Allowed)
        {
            if (logger.IsEnabled(LogLevel.Information))
            {
                LogDenied(logger, ReasonCodes.Name(reason), identity?.ClaimedSerial, context.Connection.RemoteIpAddress, route, decisionId);
            }

            var status = reason switch
            {
                ReasonCode.PathRejected => StatusCodes.Status400BadRequest,
                ReasonCode.RouteNotAllowed when route is null => StatusCodes.Status404NotFound,
                _ => StatusCodes.Status403Forbidden,
            };
            await ProblemResponses.WriteDenialAsync(context, status, reason, decisionId);
            return;
        }

        var feature = new GatewayIdentityFeature(decisionId, serial);
        context.Features.Set(feature);
        RecordedDecision.Mark(context, feature);
        await next(context);
    }

    /// <summary>
    /// The suspension aborts every connection of the device, so it must not overtake the clone's own 403. HTTP/1.1: the
    /// refusal closes its connection, and the suspension follows once it is closed. HTTP/2 (no such header): once the
    /// response is sent.
    /// </summary>
    private void SuspendAfterRefusal(HttpContext context, string serial, string detail)
    {
        if (HttpProtocol.IsHttp11(context.Request.Protocol) && context.Features.Get<IConnectionLifetimeFeature>() is { } lifetime)
        {
            context.Response.Headers.Connection = "close";
            lifetime.ConnectionClosed.Register(() => _ = cloneDetector.SuspendAsync(serial, detail));
        }
        else
        {
            context.Response.OnCompleted(() => cloneDetector.SuspendAsync(serial, detail));
        }
    }

    [LoggerMessage(EventId = GatewayEventIds.RequestDenied, Level = LogLevel.Information,
        Message = "Device request denied: {Reason}; serial {ClaimedSerial} from {Source} on route {Route}, decision {DecisionId}")]
    private static partial void LogDenied(ILogger logger, string reason, string? claimedSerial, IPAddress? source, string? route, string decisionId);
}
