using System.Net;

namespace KtZeroTrust.Core.Devices;

/// <summary>Clone detection (threat model attack 2). Bound from <c>ZeroTrust:Detectors:Clone</c>; read by the request-time check and the fleet detector alike.</summary>
public sealed class CloneDetectionOptions
{
    public const string SectionName = "ZeroTrust:Detectors:Clone";

    public bool Enabled { get; set; } = true;

    /// <summary>Two source addresses for one identity within this window is a clone. Default 5 minutes.</summary>
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Suspend the device in the registry on detection (every node then cuts it off). Default true.</summary>
    public bool SuspendDevice { get; set; } = true;

    /// <summary>Most identities the request-time check tracks at once; beyond it the oldest are forgotten. Default 1,000,000.</summary>
    public int MaxTracked { get; set; } = 1_000_000;

    /// <summary>What usable settings are: one check for the gateway's and the detectors' validation.</summary>
    public const string Requirement = SectionName + ": Window and MaxTracked must be positive.";

    public bool IsValid => Window > TimeSpan.Zero && MaxTracked > 0;
}

/// <summary>
/// The one clone rule: one device identity seen from two places within the window. The gateway applies it to each
/// request on its node, the detector to the fleet's stream; both ask this, so they can never disagree on what "the same
/// place" is.
/// </summary>
public static class CloneRule
{
    /// <summary>Two sightings are a clone when they are from different places and at most <paramref name="window"/> apart.</summary>
    public static bool IsClone(IPAddress first, DateTimeOffset firstAt, IPAddress second, DateTimeOffset secondAt, TimeSpan window)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        return (secondAt - firstAt).Duration() <= window && !SamePlace(first, second);
    }

    /// <summary>
    /// Equal addresses; an IPv4-mapped IPv6 address equals its IPv4 one; <c>::1</c> and <c>127.0.0.1</c> are one host
    /// ("localhost" resolves to either). Other loopback addresses are other places (tests stand sites on 127.0.0.2).
    /// </summary>
    public static bool SamePlace(IPAddress a, IPAddress b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (ReferenceEquals(a, b))
        {
            return true; // the connection's own address object: the request path's common case, no work
        }

        a = a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a;
        b = b.IsIPv4MappedToIPv6 ? b.MapToIPv4() : b;
        return a.Equals(b) || (IsHostLoopback(a) && IsHostLoopback(b));
    }

    /// <summary>The same for addresses as the decision stream writes them; text that is no address is only equal to itself.</summary>
    public static bool SamePlace(string a, string b)
        => string.Equals(a, b, StringComparison.Ordinal)
            || (IPAddress.TryParse(a, out var x) && IPAddress.TryParse(b, out var y) && SamePlace(x, y));

    private static bool IsHostLoopback(IPAddress address) => address.Equals(IPAddress.IPv6Loopback) || address.Equals(IPAddress.Loopback);
}
