using System.Net;

namespace KtZeroTrust.Core.Networks;

/// <summary>
/// A set of allowed source networks (CIDR): a route policy's <c>SourcePrefixes</c> and a site's allowed prefixes are
/// both matched here, so an IPv4-mapped IPv6 peer is judged the same way by the request and by the detector. Empty
/// means any source. Matching allocates nothing.
/// </summary>
public sealed class SourcePrefixes
{
    private readonly IPNetwork[] _networks;

    private SourcePrefixes(IPNetwork[] networks) => _networks = networks;

    public static SourcePrefixes Any { get; } = new([]);

    /// <summary>
    /// The network a source is counted under when sharing capacity or reporting who was refused: its IPv4 /24 or IPv6
    /// /48 ("10.1.1.0/24", "20010DB80001/48"); IPv4-mapped IPv6 as IPv4; "-" for none.
    /// </summary>
    public static string GroupOf(IPAddress? address)
    {
        if (address is null)
        {
            return "-";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        var bytes = address.GetAddressBytes();
        return bytes.Length == 4 ? $"{bytes[0]}.{bytes[1]}.{bytes[2]}.0/24" : $"{Convert.ToHexString(bytes, 0, 6)}/48";
    }

    /// <summary>True when no prefix is given: every source is allowed.</summary>
    public bool IsAny => _networks.Length == 0;

    /// <summary>Parses every prefix; the first that is not CIDR throws a <see cref="FormatException"/> naming it.</summary>
    public static SourcePrefixes Parse(IEnumerable<string> prefixes)
    {
        ArgumentNullException.ThrowIfNull(prefixes);
        var networks = prefixes.Select(p => IPNetwork.TryParse(p, out var n) ? n : throw new FormatException($"'{p}' is not a CIDR prefix.")).ToArray();
        return networks.Length == 0 ? Any : new SourcePrefixes(networks);
    }

    /// <summary>Parses what parses and leaves the rest out (stored data, already validated when it was written).</summary>
    public static SourcePrefixes ParseValid(IEnumerable<string> prefixes)
    {
        ArgumentNullException.ThrowIfNull(prefixes);
        var networks = prefixes.Select(p => IPNetwork.TryParse(p, out var n) ? n : (IPNetwork?)null).OfType<IPNetwork>().ToArray();
        return networks.Length == 0 ? Any : new SourcePrefixes(networks);
    }

    /// <summary>True when <paramref name="source"/> is in one of the prefixes (always, when there are none); an unknown source is in none.</summary>
    public bool Allows(IPAddress? source)
    {
        if (_networks.Length == 0)
        {
            return true;
        }

        if (source is null)
        {
            return false;
        }

        if (source.IsIPv4MappedToIPv6)
        {
            source = source.MapToIPv4();
        }

        foreach (var network in _networks)
        {
            if (network.Contains(source))
            {
                return true;
            }
        }

        return false;
    }

    public override string ToString() => string.Join(", ", _networks);
}
