using System.Net;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Gateway.Identity;
using KtZeroTrust.Gateway.Policy;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace KtZeroTrust.Gateway.Tests;

public sealed class PolicyTests
{
    private static readonly UserSubject Alice = new("alice", ["payments"], ["finance"], ["apps:read"], ["pwd", "otp"]);

    private static PolicySet Compile(params (string Route, RoutePolicyOptions Policy)[] policies)
        => PolicySet.Compile(policies.ToDictionary(p => p.Route, p => p.Policy));

    [Fact]
    public void Evaluate_ChecksMethodSourceSubjectScopesMfaAndDevice_InThatOrder()
    {
        var policy = Compile(("r", new RoutePolicyOptions { Roles = ["payments"], Scopes = ["apps:read"], RequireMfa = true, Methods = ["GET"], SourcePrefixes = ["10.0.0.0/8"], RequireDeviceCertificate = true })).Find("R")!;
        var inside = IPAddress.Parse("10.1.2.3");
        Assert.Equal(ReasonCode.Allowed, policy.Evaluate(Alice, "GET", inside, hasDeviceCertificate: true));
        Assert.Equal(ReasonCode.MethodNotAllowed, policy.Evaluate(Alice, "POST", inside, true));
        Assert.Equal(ReasonCode.SourceNotAllowed, policy.Evaluate(Alice, "GET", IPAddress.Parse("192.0.2.1"), true));
        Assert.Equal(ReasonCode.Allowed, policy.Evaluate(Alice, "GET", IPAddress.Parse("::ffff:10.9.9.9"), true)); // mapped IPv4
        Assert.Equal(ReasonCode.SubjectNotAllowed, policy.Evaluate(Alice with { Roles = ["noc"] }, "GET", inside, true));
        Assert.Equal(ReasonCode.SubjectNotAllowed, policy.Evaluate(Alice with { Scopes = [] }, "GET", inside, true));
        Assert.Equal(ReasonCode.MfaRequired, policy.Evaluate(Alice with { AuthenticationMethods = ["pwd"] }, "GET", inside, true));
        Assert.Equal(ReasonCode.DeviceCertificateRequired, policy.Evaluate(Alice, "GET", inside, false));
    }

    [Fact]
    public void EvaluateDevice_AllowsNamedModelsOrSites_WithinMethodsAndPrefixes()
    {
        var set = Compile(
            ("femto", new RoutePolicyOptions { Models = ["KTF-HNB-5G"], Sites = ["site-9"], Methods = ["GET"], SourcePrefixes = ["127.0.0.0/8"] }),
            ("any", new RoutePolicyOptions { AnyActiveDevice = true }));
        var femto = set.Find("femto")!;
        Assert.Equal(ReasonCode.Allowed, femto.EvaluateDevice("KTF-HNB-5G", "site-1", "GET", IPAddress.Loopback));
        Assert.Equal(ReasonCode.Allowed, femto.EvaluateDevice("KTF-HNB-LTE", "site-9", "GET", IPAddress.Loopback));
        Assert.Equal(ReasonCode.SubjectNotAllowed, femto.EvaluateDevice("KTF-HNB-LTE", "site-1", "GET", IPAddress.Loopback));
        Assert.Equal(ReasonCode.SubjectNotAllowed, femto.EvaluateDevice(null, null, "GET", IPAddress.Loopback));
        Assert.Equal(ReasonCode.MethodNotAllowed, femto.EvaluateDevice("KTF-HNB-5G", null, "DELETE", IPAddress.Loopback));
        Assert.Equal(ReasonCode.SourceNotAllowed, femto.EvaluateDevice("KTF-HNB-5G", null, "GET", IPAddress.Parse("192.0.2.1")));
        Assert.Equal(ReasonCode.Allowed, set.Find("any")!.EvaluateDevice(null, null, "PUT", null));
        Assert.Null(set.Find("unlisted"));

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            femto.EvaluateDevice("KTF-HNB-5G", "site-1", "GET", IPAddress.Loopback);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Evaluate_AllocatesNothing()
    {
        var policy = Compile(("r", new RoutePolicyOptions { Roles = ["noc", "payments"], Groups = ["finance"], RequireMfa = true, Methods = ["GET", "POST"], SourcePrefixes = ["127.0.0.0/8"] })).Find("r")!;
        var source = IPAddress.Loopback;
        policy.Evaluate(Alice, "GET", source, false); // warm
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            policy.Evaluate(Alice, "GET", source, false);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Theory]
    [InlineData("SourcePrefixes", "not-a-prefix", "is not a CIDR prefix")]
    [InlineData("Methods", "BREW", "is not an HTTP method")]
    [InlineData("RateLimitPerMinute", "-1", "cannot be negative")]
    public void Compile_RefusesABadPolicy_NamingTheRouteAndTheField(string field, string value, string message)
    {
        var policy = new RoutePolicyOptions { Roles = ["x"] };
        switch (field)
        {
            case "SourcePrefixes": policy.SourcePrefixes = [value]; break;
            case "Methods": policy.Methods = [value]; break;
            default: policy.RateLimitPerMinute = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
        }

        var error = Assert.Throws<PolicyException>(() => Compile(("payments", policy)));
        Assert.Contains("route 'payments'", error.Message, StringComparison.Ordinal);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Contains("names nobody", Assert.Throws<PolicyException>(() => Compile(("open", new RoutePolicyOptions()))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Store_AppliesAGoodChange_RefusesABadOne_AndKeepsServingThePrevious()
    {
        var source = new MemoryReloadableSource(new Dictionary<string, string?> { ["ZeroTrust:Policies:payments:Roles:0"] = "payments" });
        var configuration = new ConfigurationBuilder().Add(source).Build();
        using var store = new PolicyStore(configuration, NullLogger<PolicyStore>.Instance);
        var first = store.Current.Version;
        Assert.NotNull(store.Current.Find("payments"));

        source.Set(new() { ["ZeroTrust:Policies:payments:Roles:0"] = "payments", ["ZeroTrust:Policies:network:Roles:0"] = "noc" });
        Assert.NotEqual(first, store.Current.Version);
        Assert.NotNull(store.Current.Find("network"));
        var second = store.Current.Version;

        source.Set(new() { ["ZeroTrust:Policies:payments:Roles:0"] = "payments", ["ZeroTrust:Policies:network:SourcePrefixes:0"] = "nonsense", ["ZeroTrust:Policies:network:Roles:0"] = "noc" });
        Assert.Equal(second, store.Current.Version); // refused: the previous set keeps serving
        Assert.Contains("nonsense", store.LastError, StringComparison.Ordinal);

        source.Set(new() { ["ZeroTrust:Policies:payments:RequireMfa"] = "maybe", ["ZeroTrust:Policies:payments:Roles:0"] = "payments" });
        Assert.Equal(second, store.Current.Version); // unreadable configuration: refused too
        Assert.NotNull(store.LastError);

        source.Set(new() { ["ZeroTrust:Policies:payments:RequireMultiFactor"] = "true", ["ZeroTrust:Policies:payments:Roles:0"] = "payments" });
        Assert.Equal(second, store.Current.Version); // a misspelt setting is an error, never silently ignored
        Assert.Contains("RequireMultiFactor", store.LastError, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Store_RefusesAReloadThatWouldDropEveryPolicy()
    {
        var source = new MemoryReloadableSource(new Dictionary<string, string?> { ["ZeroTrust:Policies:payments:Roles:0"] = "payments" });
        var configuration = new ConfigurationBuilder().Add(source).Build();
        using var store = new PolicyStore(configuration, NullLogger<PolicyStore>.Instance);
        var version = store.Current.Version;

        source.Set(new() { ["Logging:LogLevel:Default"] = "Warning" }); // a half-written or emptied file

        Assert.Equal(version, store.Current.Version);
        Assert.NotNull(store.Current.Find("payments"));
        Assert.Contains("remove all", store.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public void Store_RefusesToStart_OnABadPolicyFile()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["ZeroTrust:Policies:payments:Methods:0"] = "BREW", ["ZeroTrust:Policies:payments:Roles:0"] = "x" }).Build();
        Assert.Throws<PolicyException>(() => new PolicyStore(configuration, NullLogger<PolicyStore>.Instance));
    }

    /// <summary>An in-memory configuration source whose content can be replaced and reloaded, as a file change would.</summary>
    private sealed class MemoryReloadableSource(Dictionary<string, string?> initial) : ConfigurationProvider, IConfigurationSource
    {
        public override void Load() => Data = new Dictionary<string, string?>(initial, StringComparer.OrdinalIgnoreCase);

        public void Set(Dictionary<string, string?> values)
        {
            Data = new Dictionary<string, string?>(values, StringComparer.OrdinalIgnoreCase);
            OnReload();
        }

        public IConfigurationProvider Build(IConfigurationBuilder builder) => this;
    }
}
