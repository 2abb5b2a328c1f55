using System.Collections.Frozen;
using System.Net.Http.Headers;
using KtZeroTrust.Gateway.Identity;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace KtZeroTrust.Gateway.Forwarding;

/// <summary>
/// On every route: removes every client-sent identity header (<c>X-ZT-*</c>, <c>X-Forwarded-*</c>, and any configured),
/// in any spelling an upstream could read as one of them (CGI-style frameworks turn <c>X_ZT_User</c> into
/// <c>HTTP_X_ZT_USER</c>, exactly as they do <c>X-ZT-User</c>), then adds the identity the gateway established.
/// <c>X-Forwarded-Host</c> comes from the route (metadata <c>ZeroTrust.ForwardedHost</c>, else its one matched host),
/// never from the client's Host; without either it is not sent. Runs after YARP copied the request headers, so nothing
/// a client sent under these names reaches an upstream.
/// </summary>
internal sealed class IdentityHeadersTransformProvider(IOptions<DeviceGatewayOptions> options) : ITransformProvider
{
    public const string DeviceIdHeader = "X-ZT-Device-Id";
    public const string DecisionIdHeader = "X-ZT-Decision-Id";
    public const string UserHeader = "X-ZT-User";
    public const string RolesHeader = "X-ZT-Roles";
    public const string AuthenticationMethodsHeader = "X-ZT-Auth-Methods";
    public const string PolicyVersionHeader = "X-ZT-Policy-Version";
    public const string AssertionHeader = "X-ZT-Assertion";
    public const string ForwardedHostMetadata = "ZeroTrust.ForwardedHost";
    private const string IdentityPrefix = "X-ZT-";
    private const string ForwardedPrefix = "X-Forwarded-";

    private readonly FrozenSet<string> _stripped = new[] { "Forwarded", "X-Real-IP", "X-Client-Cert" } // X-Forwarded-Client-Cert: under the X-Forwarded- prefix
        .Concat(options.Value.StripHeaders)
        .Select(h => h.Replace('_', '-'))
        .ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
    {
        ArgumentNullException.ThrowIfNull(context);

        var forwardedHost = context.Route.Metadata?.GetValueOrDefault(ForwardedHostMetadata)
            ?? (context.Route.Match.Hosts is { Count: 1 } hosts && !hosts[0].Contains('*', StringComparison.Ordinal) ? hosts[0] : null);
        context.AddRequestTransform(transform =>
        {
            Strip(transform.ProxyRequest.Headers);
            if (transform.ProxyRequest.Content is not null)
            {
                Strip(transform.ProxyRequest.Content.Headers);
            }

            if (forwardedHost is not null)
            {
                transform.ProxyRequest.Headers.TryAddWithoutValidation("X-Forwarded-Host", forwardedHost);
            }

            if (transform.HttpContext.Features.Get<GatewayIdentityFeature>() is { } identity)
            {
                var headers = transform.ProxyRequest.Headers;
                if (identity.DeviceSerial is not null)
                {
                    headers.TryAddWithoutValidation(DeviceIdHeader, identity.DeviceSerial);
                }

                headers.TryAddWithoutValidation(DecisionIdHeader, identity.DecisionId);
                if (identity.User is { } user)
                {
                    headers.TryAddWithoutValidation(UserHeader, user.Subject);
                    headers.TryAddWithoutValidation(RolesHeader, string.Join(',', user.Roles));
                    headers.TryAddWithoutValidation(AuthenticationMethodsHeader, string.Join(',', user.AuthenticationMethods));
                    headers.TryAddWithoutValidation(PolicyVersionHeader, identity.PolicyVersion);
                    headers.TryAddWithoutValidation(AssertionHeader, identity.Assertion);
                    headers.Authorization = null; // the user's token is for this gateway (its audience), not for the upstream
                }
            }

            return ValueTask.CompletedTask;
        });

        // After the strip above. YARP's default forwarders would set X-Forwarded-Host from the client's Host: these are
        // the others, each replacing what the client sent.
        context.UseDefaultForwarders = false;
        context.AddXForwardedFor();
        context.AddXForwardedProto();
        context.AddXForwardedPrefix();
    }

    /// <summary>Ours, or a spelling of ours: compared with underscores read as hyphens, case-insensitively.</summary>
    private bool IsReserved(string name)
    {
        var normalised = name.Contains('_', StringComparison.Ordinal) ? name.Replace('_', '-') : name;
        return normalised.StartsWith(IdentityPrefix, StringComparison.OrdinalIgnoreCase)
            || normalised.StartsWith(ForwardedPrefix, StringComparison.OrdinalIgnoreCase)
            || _stripped.Contains(normalised);
    }

    private void Strip(HttpHeaders headers)
    {
        List<string>? remove = null;
        foreach (var header in headers.NonValidated)
        {
            if (IsReserved(header.Key))
            {
                (remove ??= []).Add(header.Key);
            }
        }

        if (remove is not null)
        {
            foreach (var name in remove)
            {
                headers.Remove(name);
            }
        }
    }
}
