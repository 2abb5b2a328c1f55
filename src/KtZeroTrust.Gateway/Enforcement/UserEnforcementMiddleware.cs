using System.Security.Cryptography.X509Certificates;
using System.Threading.RateLimiting;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.Forwarding;
using KtZeroTrust.Gateway.Identity;
using KtZeroTrust.Gateway.Policy;
using KtZeroTrust.Hosting.Decisions;
using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Hosting.Problems;
using KtZeroTrust.Hosting.Requests;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Model;


namespace KtZeroTrust.Gateway.Enforcement;

/// <summary>
/// Enforcement for proxied user requests, pinned first in the YARP pipeline on the user listener: an unambiguous path,
/// a route with a policy (default deny), the user from the token, the route's policy, the rate limit; every outcome is
/// a decision event with its reason and the policy version; only an allowed request reaches the forwarder.
/// </summary>
internal sealed partial class UserEnforcementMiddleware(
    RequestDelegate next,
    PolicyStore policies,
    UserAuthenticator users,
    UserRateLimiter limiter,
    GatewayAssertions assertions,
    DeviceCertificateValidator certificates,
    DeviceRequestAuthorizer devices,
    DecisionRecorder recorder,
    TimeProvider timeProvider,
    ILogger<UserEnforcementMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var start = timeProvider.GetTimestamp();
        var policySet = policies.Current;
        var proxy = context.Features.Get<IReverseProxyFeature>(); // null on the fallback: no route serves the path
        var route = proxy?.Route.Config.RouteId;
        UserAuthentication identity;
        string? deviceSerial = null;
        CompiledRoutePolicy? policy = null;

        if (RequestPaths.IsAmbiguous(context.Request))
        {
            identity = UserAuthentication.Refused(ReasonCode.PathRejected, StatusCodes.Status400BadRequest);
        }
        else if (route is null)
        {
            // Nothing served here: still the identity check first, so a probe is recorded with who made it.
            identity = await users.AuthenticateAsync(context);
            if (identity.Reason == ReasonCode.Allowed)
            {
                identity = identity with { Reason = ReasonCode.RouteNotAllowed, Status = StatusCodes.Status404NotFound };
            }
        }
        else if ((policy = policySet.Find(route)) is null)
        {
            identity = UserAuthentication.Refused(ReasonCode.PolicyMissing, StatusCodes.Status403Forbidden);
        }
        else
        {
            identity = await users.AuthenticateAsync(context);
        }

        var (reason, status) = (identity.Reason, identity.Status);
        if (reason == ReasonCode.Allowed && policy is not null && identity.User is { } subject)
        {
            var hasDevice = false;
            if (policy.RequireDeviceCertificate && await context.Connection.GetClientCertificateAsync(context.RequestAborted) is { } certificate)
            {
                deviceSerial = await ActiveDeviceAsync(certificate, context.RequestAborted);
                hasDevice = deviceSerial is not null;
            }

            reason = policy.Evaluate(subject, context.Request.Method, context.Connection.RemoteIpAddress, hasDevice);
            status = reason == ReasonCode.Allowed ? StatusCodes.Status200OK : StatusCodes.Status403Forbidden;
            if (reason == ReasonCode.Allowed && !limiter.TryAcquire(policy, subject.Subject))
            {
                (reason, status) = (ReasonCode.RateLimited, StatusCodes.Status429TooManyRequests);
            }
        }

        var decision = recorder.Make.Access(DecisionListener.User, reason, identity.User?.Subject, recorder.Origin(context, route, start), policyVersion: policySet.Version, detail: identity.Detail);
        recorder.Post(decision);

        if (reason != ReasonCode.Allowed)
        {
            LogDenied(logger, ReasonCodes.Name(reason), identity.User?.Subject, route, decision.Id);
            if (status == StatusCodes.Status401Unauthorized)
            {
                context.Response.Headers.WWWAuthenticate = reason == ReasonCode.TokenMissing ? "Bearer" : $"Bearer error=\"invalid_token\", error_description=\"{ReasonCodes.Name(reason)}\"";
            }
            else if (status == StatusCodes.Status429TooManyRequests)
            {
                context.Response.Headers.RetryAfter = "60";
            }

            await ProblemResponses.WriteDenialAsync(context, status, reason, decision.Id);
            return;
        }

        var who = identity.User!.Value;
        var assertion = assertions.Create(policy!.AssertionAudience ?? proxy?.Route.Cluster?.ClusterId ?? route!, who.Subject, decision.Id, route!, policySet.Version, who.Roles, who.AuthenticationMethods, deviceSerial);
        var feature = new GatewayIdentityFeature(decision.Id, deviceSerial, who, policySet.Version, assertion);
        context.Features.Set(feature);
        RecordedDecision.Mark(context, feature);
        await next(context);
    }

    /// <summary>The serial of an active, allowed device whose certificate the user presented; null otherwise.</summary>
    private async Task<string?> ActiveDeviceAsync(X509Certificate2 certificate, CancellationToken cancellationToken)
    {
        var validation = certificates.Validate(certificate);
        if (validation.Reason != ReasonCode.Allowed || Pki.Certificates.DeviceCertificates.SerialOf(certificate) is not { } serial)
        {
            return null;
        }

        var authorization = await devices.AuthorizeAsync(new DeviceConnectionIdentity(validation.Hash, serial), timeProvider.GetUtcNow().UtcTicks, cancellationToken);
        return authorization.Reason == ReasonCode.Allowed ? authorization.Entry.DeviceSerial : null;
    }

    [LoggerMessage(EventId = GatewayEventIds.UserRequestDenied, Level = LogLevel.Information, Message = "User request denied: {Reason} (user {User}, route {Route}, decision {DecisionId})")]
    private static partial void LogDenied(ILogger logger, string reason, string? user, string? route, string decisionId);
}

/// <summary>Each route's per-user rate limit (<c>RateLimitPerMinute</c>): a fixed one-minute window per route and user.</summary>
internal sealed class UserRateLimiter : IDisposable
{
    private readonly PartitionedRateLimiter<(string Route, string Subject, int Limit)> _limiter = PartitionedRateLimiter.Create<(string Route, string Subject, int Limit), (string, string, int)>(key =>
        RateLimitPartition.GetFixedWindowLimiter(key, k => new FixedWindowRateLimiterOptions { PermitLimit = k.Limit, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));

    public bool TryAcquire(CompiledRoutePolicy policy, string subject)
    {
        if (policy.RateLimitPerMinute <= 0)
        {
            return true;
        }

        using var lease = _limiter.AttemptAcquire((policy.RouteId, subject, policy.RateLimitPerMinute));
        return lease.IsAcquired;
    }

    public void Dispose() => _limiter.Dispose();
}
