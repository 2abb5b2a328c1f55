using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.SocConsole.Authentication;
using KtZeroTrust.SocConsole.Decisions;

namespace KtZeroTrust.SocConsole.Endpoints;

/// <summary>
/// The fleet map's data: every site with its coordinates, its units by state and its open alerts (worst severity
/// first), and the units whose latest attested position lies outside their site's radius, with that position.
/// </summary>
internal static class MapEndpoints
{
    /// <summary>Moved units looked up per answer (one registry read each), newest alerts first.</summary>
    private const int MovedLimit = 200;

    public static void Map(RouteGroupBuilder api) => api.MapGet("/fleet/map", MapAsync).RequireAuthorization(ConsolePolicies.Analyst);

    private static async Task<IResult> MapAsync(IDeviceRegistry registry, IFleetInventory fleet, ConsoleDecisions decisions, IAlertAcknowledgementStore cases, TimeProvider time, CancellationToken ct)
    {
        var sites = await fleet.ListSitesAsync(ct);
        var devices = await registry.ListAsync(null, ct);
        var siteOf = devices.Where(d => d.Site is not null).ToDictionary(d => d.Serial, d => d.Site!, StringComparer.Ordinal);
        var open = await AlertEndpoints.OpenAlertsAsync(decisions, cases, time, ct);
        var alertsBySite = open.Where(a => a.Alert.Event.Subject is { } s && siteOf.ContainsKey(s)).ToLookup(a => siteOf[a.Alert.Event.Subject!]);

        // Units an open location alert names, and units whose last attestation is outside the site: both drawn where they said they were.
        var siteById = sites.ToDictionary(s => s.Id, StringComparer.Ordinal);
        var suspects = open.Where(a => a.Alert.Event.Reason is ReasonCode.LocationDrift or ReasonCode.LocationOutsideSite && a.Alert.Event.Subject is not null)
            .Select(a => a.Alert.Event.Subject!).Distinct(StringComparer.Ordinal).Take(MovedLimit);
        var moved = new List<object>();
        foreach (var serial in suspects)
        {
            var position = (await registry.GetAttestationsAsync(serial, 10, ct)).FirstOrDefault(a => a.Latitude is not null && a.Longitude is not null);
            if (position is null || !siteOf.TryGetValue(serial, out var siteId) || !siteById.TryGetValue(siteId, out var site))
            {
                continue;
            }

            moved.Add(new
            {
                serial, site = siteId, latitude = position.Latitude, longitude = position.Longitude, at = position.At,
                distanceMeters = GeoDistance.Meters(site.Latitude, site.Longitude, position.Latitude!.Value, position.Longitude!.Value),
            });
        }

        var unitsBySite = devices.Where(d => d.Site is not null).ToLookup(d => d.Site!);
        return Results.Json(new
        {
            sites = sites.Select(s => new
            {
                id = s.Id, latitude = s.Latitude, longitude = s.Longitude, radiusMeters = s.RadiusMeters,
                units = unitsBySite[s.Id].Count(),
                states = unitsBySite[s.Id].GroupBy(d => d.State.ToString()).ToDictionary(g => g.Key, g => g.Count()),
                openAlerts = alertsBySite[s.Id].Count(),
                worstSeverity = alertsBySite[s.Id].Any() ? AlertSeverities.Name(alertsBySite[s.Id].Max(a => a.Severity)) : null,
            }),
            moved,
        });
    }
}
