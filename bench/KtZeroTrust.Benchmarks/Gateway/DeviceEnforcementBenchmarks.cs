using System.Net;
using BenchmarkDotNet.Attributes;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.Enforcement;
using KtZeroTrust.Gateway.Identity;
using KtZeroTrust.Gateway.Policy;
using KtZeroTrust.Hosting.Decisions;
using KtZeroTrust.Hosting.Devices;
using KtZeroTrust.Hosting.Listeners;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace KtZeroTrust.Benchmarks.Gateway;

/// <summary>
/// The device listener's whole enforcement step for one allowed request, as the YARP pipeline calls it: identity from
/// the connection, the L1 allow-list hit, the clone check, the path guard, the route's policy, the decision made and
/// posted, the identity feature set. Everything but TLS, HTTP parsing and forwarding.
/// </summary>
[MemoryDiagnoser]
public class DeviceEnforcementBenchmarks : IDisposable
{
    private readonly DefaultHttpContext _context = new();
    private DeviceEnforcementMiddleware _middleware = null!;
    private PolicyStore _policies = null!;

    [GlobalSetup]
    public void Setup()
    {
        var cache = new AllowListCache();
        var entry = Tools.SampleEntries.Active(7);
        cache.Apply(entry);
        var sink = new DiscardingSink();
        var factory = new DecisionFactory("bench", TimeProvider.System);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["ZeroTrust:Policies:femto:AnyActiveDevice"] = "true" }).Build();
        _policies = new PolicyStore(configuration, NullLogger<PolicyStore>.Instance);
        var clones = new CloneDetector(Options.Create(new CloneDetectionOptions()), sink, factory,
            new DeviceQuarantine(sink, factory, NullLogger<DeviceQuarantine>.Instance), NullLogger<CloneDetector>.Instance);
        _middleware = new DeviceEnforcementMiddleware(_ => Task.CompletedTask, new DeviceRequestAuthorizer(cache), clones, _policies,
            new DecisionRecorder(sink, factory, TimeProvider.System), TimeProvider.System, NullLogger<DeviceEnforcementMiddleware>.Instance);

        var items = new Dictionary<object, object?>();
        ListenerContext.Set(items, ListenerKind.Device);
        DeviceTlsHandshake.SetIdentity(items, new DeviceConnectionIdentity(entry.CertificateHash, entry.DeviceSerial));
        _context.Features.Set<IConnectionItemsFeature>(new ItemsFeature(items));
        _context.Features.Set<IReverseProxyFeature>(new ProxyFeature(new RouteModel(new RouteConfig { RouteId = "femto", ClusterId = "femto" }, null, HttpTransformer.Empty)));
        _context.Connection.RemoteIpAddress = IPAddress.Loopback;
        _context.Connection.RemotePort = 50_000;
        _context.Request.Method = "GET";
        _context.Request.Path = "/femto/status";
    }

    [Benchmark]
    public Task AllowedRequest() => _middleware.InvokeAsync(_context);

    public void Dispose()
    {
        _policies?.Dispose();
        GC.SuppressFinalize(this);
    }

    private sealed class DiscardingSink : IDecisionSink
    {
        public void Post(DecisionEvent decision)
        {
        }
    }

    private sealed class ItemsFeature(IDictionary<object, object?> items) : IConnectionItemsFeature
    {
        public IDictionary<object, object?> Items { get; set; } = items;
    }

    private sealed class ProxyFeature(RouteModel route) : IReverseProxyFeature
    {
        public RouteModel Route { get; } = route;

        public ClusterModel Cluster { get; set; } = null!;

        public IReadOnlyList<DestinationState> AllDestinations { get; set; } = [];

        public IReadOnlyList<DestinationState> AvailableDestinations { get; set; } = [];

        public DestinationState? ProxiedDestination { get; set; }
    }
}
