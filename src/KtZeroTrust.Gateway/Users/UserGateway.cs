using System.Security.Claims;
using System.Threading.RateLimiting;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Gateway.Certificates;
using KtZeroTrust.Gateway.Enforcement;
using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Hosting.Decisions;
using KtZeroTrust.Hosting.Problems;
using KtZeroTrust.Hosting.Requests;
using KtZeroTrust.Hosting.Tokens;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;
using Yarp.ReverseProxy.Model;

namespace KtZeroTrust.Gateway.Users;

/// <summary>What the user gateway established, for the forwarding transform (identity headers, assertion).</summary>
public sealed record UserRequestFeature(UserSubject User, string DecisionId, string Route, string PolicyVersion, string? DeviceSerial, string Assertion) : IRecordedDecisionFeature;

/// <summary>
/// Enforcement for proxied user requests: an unambiguous path, a route with a policy (default deny), an OIDC access
/// token validated against the provider's discovery document and keys, the route's policy, the rate limit; every
/// outcome is a decision event with its reason and the policy version; only an allowed request reaches the forwarder.
/// </summary>
public sealed partial class UserGateway(
    PolicyStore policies,
    GatewayAssertions assertions,
    DeviceCertificateValidator certificates,
    DeviceRequestAuthorizer devices,
    DecisionRecorder recorder,
    TimeProvider timeProvider,
    IOptions<UserGatewayOptions> options,
    ILogger<UserGateway> logger) : IDisposable
{
    public const string Scheme = "zt-user";

    private readonly PartitionedRateLimiter<(string Route, string Subject, int Limit)> _limiter = PartitionedRateLimiter.Create<(string Route, string Subject, int Limit), (string, string, int)>(key =>
        RateLimitPartition.GetFixedWindowLimiter(key, k => new FixedWindowRateLimiterOptions { PermitLimit = k.Limit, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        var start = timeProvider.GetTimestamp();
        var policySet = policies.Current;
        var route = context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config.RouteId;
        var (reason, status, detail) = (ReasonCode.Allowed, StatusCodes.Status200OK, (string?)null);
        UserSubject? user = null;
        string? deviceSerial = null;
        CompiledRoutePolicy? policy = null;

        if (RequestPaths.IsAmbiguous(context.Request))
        {
            (reason, status) = (ReasonCode.PathRejected, StatusCodes.Status400BadRequest);
        }
        else if (route is null)
        {
            // Nothing served here: still the identity check first, so a probe is recorded with who made it.
            (reason, status, detail, user) = await AuthenticateAsync(context);
            if (reason == ReasonCode.Allowed)
            {
                (reason, status) = (ReasonCode.RouteNotAllowed, StatusCodes.Status404NotFound);
            }
        }
        else if ((policy = policySet.Find(route)) is null)
        {
            (reason, status) = (ReasonCode.PolicyMissing, StatusCodes.Status403Forbidden);
        }
        else
        {
            (reason, status, detail, user) = await AuthenticateAsync(context);
        }

        if (reason == ReasonCode.Allowed && policy is not null && user is { } subject)
        {
            var hasDevice = false;
            if (policy.RequireDeviceCertificate && await context.Connection.GetClientCertificateAsync(context.RequestAborted) is { } certificate)
            {
                deviceSerial = await ActiveDeviceAsync(certificate, context.RequestAborted);
                hasDevice = deviceSerial is not null;
            }

            reason = policy.Evaluate(subject, context.Request.Method, context.Connection.RemoteIpAddress, hasDevice);
            status = reason == ReasonCode.Allowed ? StatusCodes.Status200OK : StatusCodes.Status403Forbidden;
            if (reason == ReasonCode.Allowed && policy.RateLimitPerMinute > 0)
            {
                using var lease = _limiter.AttemptAcquire((policy.RouteId, subject.Subject, policy.RateLimitPerMinute));
                if (!lease.IsAcquired)
                {
                    (reason, status) = (ReasonCode.RateLimited, StatusCodes.Status429TooManyRequests);
                }
            }
        }

        var decision = recorder.Make.Access(DecisionListener.User, reason, user?.Subject, recorder.Origin(context, route, start), policyVersion: policySet.Version, detail: detail);
        recorder.Post(decision);
        var decisionId = decision.Id;

        if (reason != ReasonCode.Allowed)
        {
            LogDenied(logger, ReasonCodes.Name(reason), user?.Subject, route, decisionId);
            if (status == StatusCodes.Status401Unauthorized)
            {
                context.Response.Headers.WWWAuthenticate = reason == ReasonCode.TokenMissing ? "Bearer" : $"Bearer error=\"invalid_token\", error_description=\"{ReasonCodes.Name(reason)}\"";
            }
            else if (status == StatusCodes.Status429TooManyRequests)
            {
                context.Response.Headers.RetryAfter = "60";
            }

            await ProblemResponses.WriteDenialAsync(context, status, reason, decisionId);
            return;
        }

        var who = user!.Value;
        var assertion = assertions.Create(policy!.AssertionAudience ?? context.GetReverseProxyFeature()?.Route.Cluster?.ClusterId ?? route!, who.Subject, decisionId, route!, policySet.Version, who.Roles, who.AuthenticationMethods, deviceSerial);
        var feature = new UserRequestFeature(who, decisionId, route!, policySet.Version, deviceSerial, assertion);
        context.Features.Set(feature);
        RecordedDecision.Mark(context, feature);
        await next(context);
    }

    public void Dispose() => _limiter.Dispose();

    private async Task<(ReasonCode, int, string?, UserSubject?)> AuthenticateAsync(HttpContext context)
    {
        if (string.IsNullOrEmpty(options.Value.Authority) && !options.Value.EntraId.Enabled)
        {
            return (ReasonCode.IdentityProviderUnavailable, StatusCodes.Status503ServiceUnavailable, "no identity provider is configured (ZeroTrust:Users:Authority or ZeroTrust:Users:EntraId)", null);
        }

        // The algorithm is judged before any key is looked at: "none" and HMAC (the provider's public key used as an
        // HMAC secret) are refused by name, whatever their signature says.
        if (BearerAlgorithm(context.Request) is { } algorithm && !TokenAlgorithms.Asymmetric.Contains(algorithm))
        {
            return (ReasonCode.TokenAlgorithmNotAllowed, StatusCodes.Status401Unauthorized, $"alg '{algorithm}'", null);
        }

        var result = await context.AuthenticateAsync(Scheme);
        if (result.None)
        {
            return (ReasonCode.TokenMissing, StatusCodes.Status401Unauthorized, null, null);
        }

        if (!result.Succeeded)
        {
            var reason = Classify(result.Failure);
            return (reason, reason == ReasonCode.IdentityProviderUnavailable ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status401Unauthorized, result.Failure?.Message, null);
        }

        if (CheckIssuedAt(result.Principal!) is { } age)
        {
            return (age.Reason, StatusCodes.Status401Unauthorized, age.Detail, null);
        }

        // Entra ID: the tenant the issuer names must be the token's own tid as well (Identity.Web checks the tid only
        // when the issuer is a template); one directory's token is never taken for another's.
        if (options.Value.EntraId is { Enabled: true, TenantId: { } tenant } && !string.Equals(result.Principal!.FindFirst("tid")?.Value, tenant, StringComparison.OrdinalIgnoreCase))
        {
            return (ReasonCode.TokenIssuerInvalid, StatusCodes.Status401Unauthorized, $"tid '{result.Principal!.FindFirst("tid")?.Value}' is not the configured tenant", null);
        }

        return (ReasonCode.Allowed, StatusCodes.Status200OK, null, Subject(result.Principal!));
    }

    /// <summary>
    /// <c>iat</c>, which the lifetime validation does not look at: never in the future beyond the clock skew (a token
    /// minted ahead of time, or by a provider whose clock is wrong), and never older than the optional maximum age.
    /// </summary>
    private (ReasonCode Reason, string Detail)? CheckIssuedAt(ClaimsPrincipal principal)
    {
        var o = options.Value;
        var now = timeProvider.GetUtcNow();
        if (!long.TryParse(principal.FindFirst("iat")?.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var iat))
        {
            return o.MaxTokenAge is null ? null : (ReasonCode.TokenTooOld, "the token has no iat, so its age cannot be checked");
        }

        var issued = DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(iat, 0, 253_402_300_799));
        if (issued > now + o.ClockSkew)
        {
            return (ReasonCode.TokenIssuedInFuture, $"iat {issued:u} is ahead of the gateway's clock by more than {o.ClockSkew}");
        }

        return o.MaxTokenAge is { } max && now - issued > max + o.ClockSkew
            ? (ReasonCode.TokenTooOld, $"issued {issued:u}, older than the maximum token age {max}")
            : null;
    }


    /// <summary>The <c>alg</c> of a bearer JWT's header; null when there is no readable one (validation then says why).</summary>
    private static string? BearerAlgorithm(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var token = header.AsSpan(7).Trim();
        var dot = token.IndexOf('.');
        if (dot <= 0)
        {
            return null;
        }

        try
        {
            using var json = System.Text.Json.JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(token[..dot].ToString()));
            return json.RootElement.TryGetProperty("alg", out var alg) && alg.ValueKind == System.Text.Json.JsonValueKind.String ? alg.GetString() : null;
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or FormatException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>The token validation error, as a reason code (the grid of attack 12 of the threat model).</summary>
    internal static ReasonCode Classify(Exception? failure) => failure switch
    {
        SecurityTokenExpiredException => ReasonCode.TokenExpired,
        SecurityTokenNotYetValidException => ReasonCode.TokenNotYetValid,
        SecurityTokenInvalidIssuerException => ReasonCode.TokenIssuerInvalid,
        SecurityTokenInvalidAudienceException => ReasonCode.TokenAudienceInvalid,
        SecurityTokenInvalidAlgorithmException => ReasonCode.TokenAlgorithmNotAllowed,
        SecurityTokenSignatureKeyNotFoundException => ReasonCode.TokenKeyUnknown,
        SecurityTokenInvalidSignatureException => ReasonCode.TokenSignatureInvalid,
        SecurityTokenMalformedException or ArgumentException => ReasonCode.TokenMalformed,
        InvalidOperationException when failure.Message.Contains("IDX20803", StringComparison.Ordinal) => ReasonCode.IdentityProviderUnavailable,
        // Microsoft.Identity.Web (Entra ID): a token with neither scp nor roles.
        AuthenticationFailureException when failure.Message.Contains("IDW10201", StringComparison.Ordinal) => ReasonCode.TokenPermissionsMissing,
        SecurityTokenException => ReasonCode.TokenSignatureInvalid,
        _ => ReasonCode.IdentityProviderUnavailable,
    };

    private UserSubject Subject(ClaimsPrincipal principal)
    {
        var o = options.Value;
        string[] All(string type) => [.. principal.FindAll(type).Select(c => c.Value)];
        var scopes = principal.FindAll("scope").Concat(principal.FindAll("scp")).SelectMany(c => c.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToArray();
        var subject = principal.FindFirst("sub")?.Value ?? principal.FindFirst("client_id")?.Value ?? "unknown";
        return new UserSubject(subject, All(o.RolesClaim), All(o.GroupsClaim), scopes, All("amr"));
    }

    /// <summary>The serial of an active, allowed device whose certificate the user presented; null otherwise.</summary>
    private async Task<string?> ActiveDeviceAsync(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, CancellationToken cancellationToken)
    {
        var validation = certificates.Validate(certificate);
        if (validation.Reason != ReasonCode.Allowed || KtZeroTrust.Pki.Certificates.DeviceCertificates.SerialOf(certificate) is not { } serial)
        {
            return null;
        }

        var authorization = await devices.AuthorizeAsync(new DeviceConnectionIdentity(validation.Hash, serial), timeProvider.GetUtcNow().UtcTicks, cancellationToken);
        return authorization.Reason == ReasonCode.Allowed ? authorization.Entry.DeviceSerial : null;
    }

    [LoggerMessage(EventId = GatewayEventIds.UserRequestDenied, Level = LogLevel.Information, Message = "User request denied: {Reason} (user {User}, route {Route}, decision {DecisionId})")]
    private static partial void LogDenied(ILogger logger, string reason, string? user, string? route, string decisionId);
}
