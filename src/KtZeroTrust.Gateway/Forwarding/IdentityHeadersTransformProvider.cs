using System.Collections.Frozen;
using System.Net.Http.Headers;
using KtZeroTrust.Gateway.Enforcement;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace KtZeroTrust.Gateway.Forwarding;

/// <summary>
/// On every route: removes every client-sent identity header (<c>X-ZT-*</c>, <c>X-Forwarded-Client-Cert</c>, and any
/// configured), then adds the identity the gateway established. Runs after YARP copied the request headers, so
/// nothing a client sent under these names reaches an upstream.
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
    private const string IdentityPrefix = "X-ZT-";

    private readonly FrozenSet<string> _stripped = new[] { "X-Forwarded-Client-Cert" }
        .Concat(options.Value.StripHeaders)
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
        context.AddRequestTransform(transform =>
        {
            Strip(transform.ProxyRequest.Headers);
            if (transform.ProxyRequest.Content is not null)
            {
                Strip(transform.ProxyRequest.Content.Headers);
            }

            var device = transform.HttpContext.Features.Get<DeviceRequestFeature>();
            if (device is not null)
            {
                transform.ProxyRequest.Headers.TryAddWithoutValidation(DeviceIdHeader, device.DeviceSerial);
                transform.ProxyRequest.Headers.TryAddWithoutValidation(DecisionIdHeader, device.DecisionId);
            }

            if (transform.HttpContext.Features.Get<KtZeroTrust.Gateway.Users.UserRequestFeature>() is { } user)
            {
                var headers = transform.ProxyRequest.Headers;
                headers.TryAddWithoutValidation(UserHeader, user.User.Subject);
                headers.TryAddWithoutValidation(RolesHeader, string.Join(',', user.User.Roles));
                headers.TryAddWithoutValidation(AuthenticationMethodsHeader, string.Join(',', user.User.AuthenticationMethods));
                headers.TryAddWithoutValidation(DecisionIdHeader, user.DecisionId);
                headers.TryAddWithoutValidation(PolicyVersionHeader, user.PolicyVersion);
                if (user.DeviceSerial is not null)
                {
                    headers.TryAddWithoutValidation(DeviceIdHeader, user.DeviceSerial);
                }

                headers.TryAddWithoutValidation(AssertionHeader, user.Assertion);
                headers.Authorization = null; // the user's token is for this gateway (its audience), not for the upstream
            }

            return ValueTask.CompletedTask;
        });
    }

    private void Strip(HttpHeaders headers)
    {
        List<string>? remove = null;
        foreach (var header in headers.NonValidated)
        {
            if (header.Key.StartsWith(IdentityPrefix, StringComparison.OrdinalIgnoreCase) || _stripped.Contains(header.Key))
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
