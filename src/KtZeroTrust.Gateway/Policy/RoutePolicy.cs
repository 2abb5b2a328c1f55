using System.Collections.Frozen;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Networks;
using KtZeroTrust.Gateway.Identity;

namespace KtZeroTrust.Gateway.Policy;

/// <summary>
/// One route's policy as configured under <c>ZeroTrust:Policies:{routeId}</c>. User routes name users (roles, groups,
/// users, scopes, MFA); device routes name devices (models, sites, or any active device); both may limit methods and
/// source networks.
/// </summary>
public sealed class RoutePolicyOptions
{
    /// <summary>Devices of any of these models are allowed (device routes).</summary>
    public string[] Models { get; set; } = [];

    /// <summary>Devices installed at any of these sites are allowed (device routes).</summary>
    public string[] Sites { get; set; } = [];

    /// <summary>Any device the allow list admits (device routes). Must be said explicitly.</summary>
    public bool AnyActiveDevice { get; set; }

    /// <summary>Users holding any of these roles (the <c>roles</c> claim) are allowed.</summary>
    public string[] Roles { get; set; } = [];

    /// <summary>Users in any of these groups are allowed.</summary>
    public string[] Groups { get; set; } = [];

    /// <summary>These subjects (<c>sub</c>) are allowed.</summary>
    public string[] Users { get; set; } = [];

    /// <summary>Every one of these scopes must be granted (the <c>scope</c> or <c>scp</c> claim).</summary>
    public string[] Scopes { get; set; } = [];

    /// <summary>Any authenticated user (the subject lists are then not needed). Must be said explicitly.</summary>
    public bool AnyAuthenticatedUser { get; set; }

    /// <summary>The token's <c>amr</c> must name a second factor.</summary>
    public bool RequireMfa { get; set; }

    /// <summary>What counts as a second factor in <c>amr</c> (RFC 8176 values).</summary>
    public string[] MfaMethods { get; set; } = ["mfa", "otp", "hwk", "swk", "sms", "fpt", "face", "iris", "sc"];

    /// <summary>The user must also present the certificate of an active managed device on the TLS connection.</summary>
    public bool RequireDeviceCertificate { get; set; }

    /// <summary>Allowed client networks (CIDR). Empty: any.</summary>
    public string[] SourcePrefixes { get; set; } = [];

    /// <summary>Allowed HTTP methods. Empty: any.</summary>
    public string[] Methods { get; set; } = [];

    /// <summary>Requests per minute per user on this route; 0: no limit.</summary>
    public int RateLimitPerMinute { get; set; }

    /// <summary>The <c>aud</c> of the gateway assertion for this route. Default: the route's cluster id.</summary>
    public string? AssertionAudience { get; set; }
}

/// <summary>A route's policy compiled for evaluation: frozen sets, parsed networks, no allocation per request.</summary>
public sealed class CompiledRoutePolicy
{
    private readonly FrozenSet<string> _roles;
    private readonly FrozenSet<string> _groups;
    private readonly FrozenSet<string> _users;
    private readonly string[] _scopes;
    private readonly FrozenSet<string> _mfa;
    private readonly SourcePrefixes _prefixes;
    private readonly FrozenSet<string> _methods;
    private readonly bool _anyUser;
    private readonly FrozenSet<string> _models;
    private readonly FrozenSet<string> _sites;
    private readonly bool _anyDevice;

    internal CompiledRoutePolicy(string routeId, RoutePolicyOptions o)
    {
        RouteId = routeId;
        _roles = o.Roles.ToFrozenSet(StringComparer.Ordinal);
        _groups = o.Groups.ToFrozenSet(StringComparer.Ordinal);
        _users = o.Users.ToFrozenSet(StringComparer.Ordinal);
        _scopes = [.. o.Scopes];
        _mfa = o.MfaMethods.ToFrozenSet(StringComparer.Ordinal);
        _methods = o.Methods.Select(m => m.ToUpperInvariant()).ToFrozenSet(StringComparer.OrdinalIgnoreCase);
        _anyUser = o.AnyAuthenticatedUser;
        _models = o.Models.ToFrozenSet(StringComparer.Ordinal);
        _sites = o.Sites.ToFrozenSet(StringComparer.Ordinal);
        _anyDevice = o.AnyActiveDevice;
        RequireMfa = o.RequireMfa;
        RequireDeviceCertificate = o.RequireDeviceCertificate;
        RateLimitPerMinute = o.RateLimitPerMinute;
        AssertionAudience = o.AssertionAudience;
        try
        {
            _prefixes = SourcePrefixes.Parse(o.SourcePrefixes);
        }
        catch (FormatException ex)
        {
            throw new PolicyException($"route '{routeId}': SourcePrefixes: {ex.Message}");
        }

        if (!_anyUser && _roles.Count == 0 && _groups.Count == 0 && _users.Count == 0 && !_anyDevice && _models.Count == 0 && _sites.Count == 0)
        {
            throw new PolicyException($"route '{routeId}': the policy names nobody; give Roles, Groups or Users (or AnyAuthenticatedUser: true) for users, Models or Sites (or AnyActiveDevice: true) for devices.");
        }

        if (o.RateLimitPerMinute < 0)
        {
            throw new PolicyException($"route '{routeId}': RateLimitPerMinute cannot be negative.");
        }

        foreach (var method in _methods)
        {
            if (method is not ("GET" or "HEAD" or "POST" or "PUT" or "PATCH" or "DELETE" or "OPTIONS"))
            {
                throw new PolicyException($"route '{routeId}': Methods: '{method}' is not an HTTP method this gateway forwards.");
            }
        }
    }

    public string RouteId { get; }

    public bool RequireMfa { get; }

    public bool RequireDeviceCertificate { get; }

    public int RateLimitPerMinute { get; }

    public string? AssertionAudience { get; }

    /// <summary>The policy's answer. Checks run cheapest first; the first failing one is the reason.</summary>
    public ReasonCode Evaluate(in UserSubject user, string method, IPAddress? source, bool hasDeviceCertificate)
    {
        if (_methods.Count > 0 && !_methods.Contains(method))
        {
            return ReasonCode.MethodNotAllowed;
        }

        if (!_prefixes.Allows(source))
        {
            return ReasonCode.SourceNotAllowed;
        }

        if (!_anyUser && !_users.Contains(user.Subject) && !AnyIn(user.Roles, _roles) && !AnyIn(user.Groups, _groups))
        {
            return ReasonCode.SubjectNotAllowed;
        }

        foreach (var scope in _scopes)
        {
            if (Array.IndexOf(user.Scopes, scope) < 0)
            {
                return ReasonCode.SubjectNotAllowed;
            }
        }

        if (RequireMfa && !AnyIn(user.AuthenticationMethods, _mfa))
        {
            return ReasonCode.MfaRequired;
        }

        if (RequireDeviceCertificate && !hasDeviceCertificate)
        {
            return ReasonCode.DeviceCertificateRequired;
        }

        return ReasonCode.Allowed;
    }

    /// <summary>The policy's answer for a device the allow list already admitted. No allocation.</summary>
    public ReasonCode EvaluateDevice(string? model, string? site, string method, IPAddress? source)
    {
        if (_methods.Count > 0 && !_methods.Contains(method))
        {
            return ReasonCode.MethodNotAllowed;
        }

        if (!_prefixes.Allows(source))
        {
            return ReasonCode.SourceNotAllowed;
        }

        return _anyDevice || (model is not null && _models.Contains(model)) || (site is not null && _sites.Contains(site))
            ? ReasonCode.Allowed
            : ReasonCode.SubjectNotAllowed;
    }

    private static bool AnyIn(string[] values, FrozenSet<string> set)
    {
        if (set.Count == 0)
        {
            return false;
        }

        foreach (var value in values)
        {
            if (set.Contains(value))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>Every route's policy, compiled together, with a version hash that goes into every decision.</summary>
public sealed class PolicySet
{
    private readonly FrozenDictionary<string, CompiledRoutePolicy> _routes;

    private PolicySet(FrozenDictionary<string, CompiledRoutePolicy> routes, string version)
    {
        _routes = routes;
        Version = version;
    }

    public static PolicySet Empty { get; } = new(FrozenDictionary<string, CompiledRoutePolicy>.Empty, "none");

    public string Version { get; }

    public int Count => _routes.Count;

    /// <summary>Null when the route has no policy: the caller denies (default deny).</summary>
    public CompiledRoutePolicy? Find(string routeId) => _routes.GetValueOrDefault(routeId);

    /// <summary>Compiles; throws <see cref="PolicyException"/> naming the route and field at the first error.</summary>
    public static PolicySet Compile(IReadOnlyDictionary<string, RoutePolicyOptions> policies)
    {
        ArgumentNullException.ThrowIfNull(policies);
        var compiled = policies.ToFrozenDictionary(p => p.Key, p => new CompiledRoutePolicy(p.Key, p.Value ?? throw new PolicyException($"route '{p.Key}': empty policy.")), StringComparer.OrdinalIgnoreCase);
        // Version: a hash of the policies in a canonical order, so every node with the same configuration reports the same one.
        var canonical = JsonSerializer.SerializeToUtf8Bytes(policies.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => new { route = p.Key, policy = p.Value }));
        return new PolicySet(compiled, Convert.ToHexStringLower(SHA256.HashData(canonical))[..16]);
    }
}

/// <summary>A policy configuration that cannot be compiled; the message names the route and the field.</summary>
public sealed class PolicyException(string message) : Exception(message);
