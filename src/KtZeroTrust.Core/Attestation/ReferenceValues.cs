using System.Globalization;

namespace KtZeroTrust.Core.Attestation;

/// <summary>An install site: where a unit must be, what it must hear, where it may connect from.</summary>
public sealed record Site
{
    public required string Id { get; init; }
    public required double Latitude { get; init; }
    public required double Longitude { get; init; }
    public required double RadiusMeters { get; init; }

    /// <summary>Cell ids a unit at this site hears (PLMN-TAC-CellId); its report must overlap them.</summary>
    public IReadOnlyList<string> NeighbourCells { get; init; } = [];

    /// <summary>Source prefixes (CIDR) units of this site connect from.</summary>
    public IReadOnlyList<string> AllowedPrefixes { get; init; } = [];
}

/// <summary>A firmware build a model may run: version and the SHA-256 of its image.</summary>
public sealed record FirmwareReference
{
    public required string Model { get; init; }
    public required string Version { get; init; }
    public required string Sha256 { get; init; }
}

/// <summary>Per-model rules: the minimum firmware (no rollback below it) and the configuration flags that must be off.</summary>
public sealed record ModelPolicy
{
    public required string Model { get; init; }
    public string? MinimumVersion { get; init; }
    public IReadOnlyList<string> ForbiddenFlags { get; init; } = ["ssh_enabled", "debug_enabled"];
}

/// <summary>Reference values as imported in one go (ztctl reference import, the development bootstrap).</summary>
public sealed record ReferenceValues
{
    public IReadOnlyList<Site> Sites { get; init; } = [];
    public IReadOnlyList<FirmwareReference> Firmware { get; init; } = [];
    public IReadOnlyList<ModelPolicy> Models { get; init; } = [];
}

/// <summary>Dotted numeric firmware versions (5.2.10 > 5.2.9); non-numeric parts compare as text.</summary>
public static class FirmwareVersion
{
    public static int Compare(string? a, string? b)
    {
        var left = (a ?? "").Split('.');
        var right = (b ?? "").Split('.');
        for (var i = 0; i < Math.Max(left.Length, right.Length); i++)
        {
            var x = i < left.Length ? left[i] : "0";
            var y = i < right.Length ? right[i] : "0";
            var c = long.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out var nx) && long.TryParse(y, NumberStyles.None, CultureInfo.InvariantCulture, out var ny)
                ? nx.CompareTo(ny)
                : string.CompareOrdinal(x, y);
            if (c != 0)
            {
                return c;
            }
        }

        return 0;
    }
}

/// <summary>Great-circle distance, for "is the unit within its site's radius".</summary>
public static class GeoDistance
{
    private const double EarthRadiusMeters = 6_371_008.8;

    public static double Meters(double lat1, double lon1, double lat2, double lon2)
    {
        static double Rad(double d) => d * Math.PI / 180;
        var dLat = Rad(lat2 - lat1);
        var dLon = Rad(lon2 - lon1);
        var h = (Math.Sin(dLat / 2) * Math.Sin(dLat / 2)) + (Math.Cos(Rad(lat1)) * Math.Cos(Rad(lat2)) * Math.Sin(dLon / 2) * Math.Sin(dLon / 2));
        return 2 * EarthRadiusMeters * Math.Asin(Math.Min(1, Math.Sqrt(h)));
    }
}
