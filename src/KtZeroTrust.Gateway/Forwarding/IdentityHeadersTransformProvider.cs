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
