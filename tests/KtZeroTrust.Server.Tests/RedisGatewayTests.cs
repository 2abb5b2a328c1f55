using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.SocConsole.Auditing;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.Issuance;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.DependencyInjection;

namespace KtZeroTrust.Server.Tests;

/// <summary>Two gateway nodes on one Redis: revocation reaches both by push and cuts open connections on both.</summary>
public sealed class RedisGatewayTests(RedisGatewayFixture pair) : IClassFixture<RedisGatewayFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Revocation_ReachesBothNodes_AndAbortsTheOpenConnectionOnEach()
    {
        var certificate = pair.NodeA.SampleCertificate("FC-0002");
        await using var onA = await RawHttp1Connection.OpenAsync(pair.NodeA.DevicePort, certificate, pair.NodeA.TlsRoot, Ct);
        await using var onB = await RawHttp1Connection.OpenAsync(pair.NodeB.DevicePort, certificate, pair.NodeB.TlsRoot, Ct);
        Assert.Equal(200, (await onA.GetAsync("/femto/status", Ct)).Status);
        Assert.Equal(200, (await onB.GetAsync("/femto/status", Ct)).Status);

        await pair.TransitionAsync("FC-0002", DeviceLifecycleState.Revoked, "stolen from a customer site");

        Assert.True(await onA.ClosedByServerAsync(TimeSpan.FromSeconds(20), Ct), "node A must close the revoked device's connection");
        Assert.True(await onB.ClosedByServerAsync(TimeSpan.FromSeconds(20), Ct), "node B must close the revoked device's connection");
        foreach (var node in new[] { pair.NodeA, pair.NodeB })
        {
            var abort = await node.DecisionAsync(d => d.Text("route") == "connection-abort" && d.Text("subject") == "FC-0002", "the abort decision");
            Assert.Equal("device_revoked", abort.GetProperty("reason").GetString());
            using var client = node.DeviceClient(certificate);
            await DeviceGatewayTests.AssertProblemAsync(await client.GetAsync(node.DeviceUri("/femto/status"), Ct), HttpStatusCode.Forbidden, "device_revoked");
        }
    }

    [Fact]
    public async Task Console_ShowsTheWholeFleetsDecisions_FromTheSharedStream()
    {
        // A decision made on node B only (its own path), looked for through node A's console.
        var path = $"/femto/fleet-{Guid.NewGuid():N}";
        using (var device = pair.NodeB.DeviceClient(pair.NodeB.SampleCertificate("FC-0004")))
        {
            using var _ = await device.GetAsync(pair.NodeB.DeviceUri(path), Ct);
        }

        Assert.DoesNotContain(await pair.NodeA.DecisionsAsync(), d => d.Text("path") == path); // not in A's own log
        using var console = await SignedInAsync(pair.NodeA);
        var api = new Uri($"https://127.0.0.1:{pair.NodeA.ConsolePort}/api/");
        var found = await Eventually.Until(
            async () => await console.GetFromJsonAsync<JsonElement[]>(new Uri(api, "decisions?device=FC-0004&limit=50"), Ct),
            list => list!.Any(d => d.Text("path") == path), "node B's decision in node A's console query");
        Assert.Equal("allow", found!.First(d => d.Text("path") == path).Text("outcome"));
        var detail = await console.GetFromJsonAsync<JsonElement>(new Uri(api, "devices/FC-0004"), Ct);
        Assert.Contains(detail.GetProperty("decisions").EnumerateArray(), d => d.Text("path") == path);

        // The live feed follows the stream too: a decision made on B after A's browser subscribed arrives on A.
        using var stream = await console.GetStreamAsync(new Uri(api, "decisions/stream?device=FC-0004"), Ct);
        using var reader = new StreamReader(stream);
        var live = $"/femto/live-{Guid.NewGuid():N}";
        var seen = Task.Run(async () =>
        {
            while (await reader.ReadLineAsync(Ct) is { } line)
            {
                if (line.Contains(live, StringComparison.Ordinal))
                {
                    return line;
                }
            }

            return null;
        }, Ct);
        using (var device = pair.NodeB.DeviceClient(pair.NodeB.SampleCertificate("FC-0004")))
        {
            while (!seen.IsCompleted)
            {
                using var _ = await device.GetAsync(pair.NodeB.DeviceUri(live), Ct);
                await Task.WhenAny(seen, Task.Delay(300, Ct));
            }
        }

        Assert.NotNull(await seen);
    }

    private static Task<HttpClient> SignedInAsync(ServerFixture node) => node.SignedInConsoleAsync("fleet-analyst", ConsoleRoles.Analyst);

    [Fact]
    public async Task SuspendAndResume_ArePushedToBothNodes()
    {
        var certificate = pair.NodeA.SampleCertificate("FC-0003");
        using var a = pair.NodeA.DeviceClient(certificate);
        using var b = pair.NodeB.DeviceClient(certificate);
        Assert.Equal(HttpStatusCode.OK, (await a.GetAsync(pair.NodeA.DeviceUri("/femto/status"), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await b.GetAsync(pair.NodeB.DeviceUri("/femto/status"), Ct)).StatusCode);

        await pair.TransitionAsync("FC-0003", DeviceLifecycleState.Suspended, "investigating a clone alert");
        await Eventually.Until(() => a.GetAsync(pair.NodeA.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.Forbidden, "node A to deny");
        var denied = await Eventually.Until(() => b.GetAsync(pair.NodeB.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.Forbidden, "node B to deny");
        await DeviceGatewayTests.AssertProblemAsync(denied, HttpStatusCode.Forbidden, "device_suspended");

        await pair.TransitionAsync("FC-0003", DeviceLifecycleState.Active, "clone alert was a false positive");
        await Eventually.Until(() => a.GetAsync(pair.NodeA.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.OK, "node A to allow again");
        await Eventually.Until(() => b.GetAsync(pair.NodeB.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.OK, "node B to allow again");
    }

    [Fact]
    public async Task UnknownCertificate_IsDenied_AndRememberedBriefly()
    {
        // Issued by the operator CA (so the handshake passes) but never registered: the allow list must say no.
        using var ca = pair.NodeB.OperatorCa();
        using var stray = TestCertificates.Device(ca, "FC-0001");
        var cache = pair.NodeB.Services.GetRequiredService<AllowListCache>();
        using var client = pair.NodeB.DeviceClient(stray);

        await DeviceGatewayTests.AssertProblemAsync(await client.GetAsync(pair.NodeB.DeviceUri("/femto/status"), Ct), HttpStatusCode.Forbidden, "device_unknown");
        Assert.Equal(CacheLookup.KnownUnknown, cache.Lookup(CertificateHash.Of(stray), DateTime.UtcNow.Ticks, out _));
    }

    [Fact]
    public async Task FirstRequestOnANode_IsServedFromRedis_ThenFromItsOwnCache()
    {
        var certificate = pair.NodeA.SampleCertificate("FC-0001");
        var cache = pair.NodeB.Services.GetRequiredService<AllowListCache>();
        using var client = pair.NodeB.DeviceClient(certificate);

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(pair.NodeB.DeviceUri("/femto/status"), Ct)).StatusCode);

        Assert.Equal(CacheLookup.Hit, cache.Lookup(CertificateHash.Of(certificate), DateTime.UtcNow.Ticks, out var entry));
        Assert.Equal(("FC-0001", DeviceLifecycleState.Active), (entry.DeviceSerial, entry.State));
    }
}

/// <summary>Redis goes away and comes back (empty): bounded staleness, then deny; resync before trusting again.</summary>
public sealed class RedisOutageTests(ShortStalenessRedisGatewayFixture pair) : IClassFixture<ShortStalenessRedisGatewayFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RedisOutage_StaysSafe_AndTheNodeResynchronisesWhenRedisReturns()
    {
        var node = pair.NodeA;
        using var cached = node.DeviceClient(node.SampleCertificate("FC-0001"));
        using var changedMeanwhile = node.DeviceClient(node.SampleCertificate("FC-0002"));
        Assert.Equal(HttpStatusCode.OK, (await cached.GetAsync(node.DeviceUri("/femto/status"), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await changedMeanwhile.GetAsync(node.DeviceUri("/femto/status"), Ct)).StatusCode);

        await pair.Redis.StopAsync();

        // A certificate issued while Redis is away is in the registry only: the node has never heard of it.
        using var ca = node.OperatorCa();
        using var fresh = await new OperationalCertificateIssuer(ca, node.OpenRegistry(), TimeProvider.System).IssueAsync("FC-0006", TimeSpan.FromDays(1), "test", Ct);
        using var neverSeen = node.DeviceClient(fresh);
        var unavailable = await Eventually.Until(() => neverSeen.GetAsync(node.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.Forbidden, "an unknown certificate to be denied");
        await DeviceGatewayTests.AssertProblemAsync(unavailable, HttpStatusCode.Forbidden, "allow_list_unavailable");
        var stale = await Eventually.Until(() => cached.GetAsync(node.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.Forbidden, "cached entries to go stale");
        await DeviceGatewayTests.AssertProblemAsync(stale, HttpStatusCode.Forbidden, "allow_list_stale");
        using (var probe = node.DeviceClient(null))
        {
            var ready = await DeviceGatewayTests.ReadinessAsync(probe, node.ConsolePort);
            Assert.Equal(("unhealthy", "unhealthy"), (ready.GetProperty("status").GetString(), ready.GetProperty("checks").GetProperty("allow-list").GetProperty("status").GetString()));
        }

        // A change made while Redis is away reaches the registry only (ztctl would warn that the push failed).
        await node.OpenRegistry().TransitionAsync("FC-0002", DeviceLifecycleState.Suspended, "test", "suspended during the outage", Ct);

        await pair.Redis.StartAsync(); // comes back empty
        await Eventually.Until(() => cached.GetAsync(node.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.OK, "the node to resync and trust its cache again");
        var missed = await Eventually.Until(() => changedMeanwhile.GetAsync(node.DeviceUri("/femto/status"), Ct), r => r.StatusCode == HttpStatusCode.Forbidden, "the change made during the outage to apply");
        await DeviceGatewayTests.AssertProblemAsync(missed, HttpStatusCode.Forbidden, "device_suspended");
        Assert.Equal(HttpStatusCode.OK, (await neverSeen.GetAsync(node.DeviceUri("/femto/status"), Ct)).StatusCode);

        foreach (var transition in new[] { "allow-list:feed-lost", "allow-list:stale", "allow-list:resynchronised" })
        {
            var e = await node.DecisionAsync(d => d.Text("route") == transition, transition);
            Assert.Equal("system", e.GetProperty("kind").GetString());
        }
    }
}
