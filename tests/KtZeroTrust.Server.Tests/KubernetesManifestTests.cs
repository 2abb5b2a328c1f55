using KtZeroTrust.Gateway.Policy;
using KtZeroTrust.Server.Configuration;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using YamlDotNet.RepresentationModel;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// deploy/kubernetes rendered by kustomize (<c>kubectl kustomize</c>, offline; no cluster here) and checked for what the
/// product relies on: probes on the right listener, requests, a PodDisruptionBudget per role, the device listener as
/// TCP passthrough (no ingress), every Secret and ConfigMap accounted for, default-deny network policies with only the
/// gateway reaching the upstreams, and settings the server actually reads (the same check that refuses a start).
/// </summary>
public sealed class KubernetesManifestTests
{
    private static readonly string Root = Path.Combine(RepositoryPaths.Root, "deploy", "kubernetes");
    private static readonly string[] Roles = ["gateway", "attestation", "console"];

    public static TheoryData<string> Overlays => new() { "overlays/production", "overlays/lab" };

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EveryRole_HasProbesOnItsOwnListener_Requests_APodDisruptionBudget_AndRunsAsNonRoot(string overlay)
    {
        var objects = await RenderAsync(overlay);
        foreach (var role in Roles)
        {
            var deployment = Single(objects, "Deployment", "ktzt-" + role);
            var labels = Map(deployment, "spec", "template", "metadata", "labels");
            Assert.True(Subset(Map(deployment, "spec", "selector", "matchLabels"), labels), $"{role}: the selector picks the template's pods");
            Assert.Equal("true", Text(deployment, "spec", "template", "spec", "securityContext", "runAsNonRoot"));
            var container = Seq(deployment, "spec", "template", "spec", "containers").Single();
            var ports = Seq(container, "ports").Select(p => Text(p, "name")).ToList();
            foreach (var (probe, path) in new[] { ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz") })
            {
                Assert.Equal(path, Text(container, probe, "httpGet", "path"));
                Assert.Equal("HTTPS", Text(container, probe, "httpGet", "scheme"));
                Assert.Contains(Text(container, probe, "httpGet", "port"), ports);
                Assert.NotEqual("device", Text(container, probe, "httpGet", "port")); // the kubelet has no device certificate
            }

            Assert.NotNull(Text(container, "resources", "requests", "cpu"));
            Assert.NotNull(Text(container, "resources", "requests", "memory"));
            Assert.NotNull(Text(container, "resources", "limits", "memory"));
            Assert.Contains(objects, o => Kind(o) == "PodDisruptionBudget" && Subset(Map(o, "spec", "selector", "matchLabels"), labels));
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task TheDeviceListener_IsATcpPassthroughLoadBalancer_AndNothingIsAnIngress(string overlay)
    {
        var objects = await RenderAsync(overlay);
        var device = Single(objects, "Service", "ktzt-device");
        Assert.Equal("LoadBalancer", Text(device, "spec", "type"));
        Assert.Equal("Local", Text(device, "spec", "externalTrafficPolicy")); // the unit's source address reaches the pod
        var port = Seq(device, "spec", "ports").Single();
        Assert.Equal(("8443", "TCP"), (Text(port, "port"), Text(port, "protocol")));
        Assert.True(Subset(Map(device, "spec", "selector"), Map(Single(objects, "Deployment", "ktzt-gateway"), "spec", "template", "metadata", "labels")));
        Assert.DoesNotContain(objects, o => Kind(o) is "Ingress" or "Gateway" or "HTTPRoute");
        Assert.Equal("LoadBalancer", Text(Single(objects, "Service", "ktzt-enrollment"), "spec", "type"));
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EverySecretAndConfigMap_IsRenderedOrDocumented_AndTheSettingsAreOnesTheServerReads(string overlay)
    {
        var objects = await RenderAsync(overlay);
        var readme = await File.ReadAllTextAsync(Path.Combine(Root, "README.md"), TestContext.Current.CancellationToken);
        var secrets = Descendants(objects, "secretKeyRef").Select(s => Text(s, "name")!)
            .Concat(Descendants(objects, "secret").Select(s => Text(s, "secretName")).OfType<string>()).Distinct().ToList();
        Assert.NotEmpty(secrets);
        foreach (var secret in secrets)
        {
            Assert.True(objects.Any(o => Kind(o) == "Secret" && Name(o) == secret) || readme.Contains($"`{secret}`", StringComparison.Ordinal),
                $"Secret {secret} is neither rendered nor documented in deploy/kubernetes/README.md");
        }

        foreach (var configMap in Descendants(objects, "configMap").Select(c => Text(c, "name")!).Distinct())
        {
            Assert.Contains(objects, o => Kind(o) == "ConfigMap" && Name(o) == configMap);
        }

        // What each role's container is given (the ConfigMap's files, its environment, its arguments) is configuration
        // the server reads: the start-up check that refuses unknown settings passes, and the policies compile.
        var config = Single(objects, "ConfigMap", "ktzt-config");
        foreach (var role in Roles)
        {
            var container = Seq(Single(objects, "Deployment", "ktzt-" + role), "spec", "template", "spec", "containers").Single();
            var builder = new ConfigurationBuilder();
            foreach (var file in ((YamlMappingNode)config["data"]).Children.OrderBy(c => ((YamlScalarNode)c.Key).Value, StringComparer.Ordinal))
            {
                builder.AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(((YamlScalarNode)file.Value).Value!)));
            }

            var settings = Seq(container, "env").Select(e => Text(e, "name")!).Where(n => n.StartsWith("ZeroTrust__", StringComparison.Ordinal))
                .Select(n => KeyValuePair.Create(n.Replace("__", ":", StringComparison.Ordinal), (string?)"x"))
                .Concat(Seq(container, "args").Select(a => ((YamlScalarNode)a).Value!.TrimStart('-').Split('=', 2)).Select(p => KeyValuePair.Create(p[0], (string?)p[1])));
            var configuration = builder.AddInMemoryCollection(settings).Build();
            ConfigurationKeyCheck.Check(configuration); // throws ZT-START-012 naming the setting nothing reads
            using var policies = new PolicyStore(configuration, NullLogger<PolicyStore>.Instance); // throws on a policy that does not compile
            Assert.True(policies.Current.Count > 0);
        }
    }

    [Fact]
    public async Task NetworkPolicies_DenyByDefault_AndOnlyTheGatewayReachesTheUpstreams()
    {
        var objects = await RenderAsync("overlays/production");
        var policies = objects.Where(o => Kind(o) == "NetworkPolicy").ToList();
        var deny = policies.Single(p => Name(p) == "default-deny");
        Assert.Equal(["Ingress", "Egress"], Seq(deny, "spec", "policyTypes").Select(t => ((YamlScalarNode)t).Value));
        Assert.Null(Find(deny, "spec", "ingress"));
        Assert.Null(Find(deny, "spec", "egress"));

        var toUpstreams = policies.Where(p => Descendants([p], "namespaceSelector").Any(s => Text(s, "matchLabels", "kubernetes.io/metadata.name") == "core-network")).ToList();
        Assert.Equal(["gateway"], toUpstreams.Select(Name));
        Assert.Equal("gateway", Text(toUpstreams[0], "spec", "podSelector", "matchLabels", "app.kubernetes.io/component"));

        var upstreamSide = Single(await RenderAsync("upstream-namespace"), "NetworkPolicy", "only-from-ktzerotrust-gateway");
        Assert.Equal("core-network", Text(upstreamSide, "metadata", "namespace"));
        var from = Seq(Seq(upstreamSide, "spec", "ingress").Single(), "from").Single();
        Assert.Equal(("ktzerotrust", "gateway"), (Text(from, "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name"), Text(from, "podSelector", "matchLabels", "app.kubernetes.io/component")));
    }

    [Fact]
    public async Task RedisRunsWithSentinels_AndPostgreSqlOnAPersistentVolume()
    {
        var objects = await RenderAsync("overlays/production");
        var redis = Single(objects, "StatefulSet", "ktzt-redis");
        Assert.Equal("3", Text(redis, "spec", "replicas"));
        Assert.Equal(["redis", "sentinel"], Seq(redis, "spec", "template", "spec", "containers").Select(c => Text(c, "name")));
        var scripts = Single(objects, "ConfigMap", "ktzt-redis-scripts");
        Assert.Contains("sentinel monitor ktzt", Text(scripts, "data", "start-sentinel.sh"), StringComparison.Ordinal);
        Assert.NotNull(Find(Single(objects, "StatefulSet", "ktzt-postgres"), "spec", "volumeClaimTemplates"));
        Assert.Contains(objects, o => Kind(o) == "PodDisruptionBudget" && Name(o) == "ktzt-redis");
    }

    private static async Task<List<YamlMappingNode>> RenderAsync(string overlay)
    {
        var yaml = await Tools.RunCheckedAsync("kubectl", ["kustomize", Path.Combine(Root, overlay)], TestContext.Current.CancellationToken);
        var stream = new YamlStream();
        stream.Load(new StringReader(string.Join('\n', yaml.Split('\n').Where(l => !l.StartsWith("# Warning:", StringComparison.Ordinal)))));
        return stream.Documents.Select(d => d.RootNode).OfType<YamlMappingNode>().ToList();
    }

    private static YamlNode? Find(YamlNode node, params string[] path)
    {
        foreach (var key in path)
        {
            if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(key), out var next))
            {
                return null;
            }

            node = next;
        }

        return node;
    }

    private static string? Text(YamlNode node, params string[] path) => (Find(node, path) as YamlScalarNode)?.Value;

    private static IEnumerable<YamlNode> Seq(YamlNode node, params string[] path) => Find(node, path) is YamlSequenceNode seq ? seq.Children : [];

    private static Dictionary<string, string> Map(YamlNode node, params string[] path)
        => Find(node, path) is YamlMappingNode map ? map.Children.ToDictionary(c => ((YamlScalarNode)c.Key).Value!, c => (c.Value as YamlScalarNode)?.Value ?? "") : [];

    private static bool Subset(Dictionary<string, string> part, Dictionary<string, string> whole) => part.Count > 0 && part.All(p => whole.TryGetValue(p.Key, out var v) && v == p.Value);

    private static string? Kind(YamlNode o) => Text(o, "kind");

    private static string? Name(YamlNode o) => Text(o, "metadata", "name");

    private static YamlMappingNode Single(List<YamlMappingNode> objects, string kind, string name) => objects.Single(o => Kind(o) == kind && Name(o) == name);

    /// <summary>Every mapping found under a key named <paramref name="key"/>, anywhere in the objects.</summary>
    private static IEnumerable<YamlNode> Descendants(IEnumerable<YamlNode> nodes, string key)
    {
        foreach (var node in nodes)
        {
            switch (node)
            {
                case YamlMappingNode map:
                    foreach (var (k, v) in map.Children)
                    {
                        if (((YamlScalarNode)k).Value == key && v is YamlMappingNode)
                        {
                            yield return v;
                        }

                        foreach (var found in Descendants([v], key))
                        {
                            yield return found;
                        }
                    }

                    break;
                case YamlSequenceNode seq:
                    foreach (var found in Descendants(seq.Children, key))
                    {
                        yield return found;
                    }

                    break;
            }
        }
    }
}
