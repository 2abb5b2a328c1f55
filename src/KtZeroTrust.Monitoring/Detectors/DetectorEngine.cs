using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Core.Networks;

namespace KtZeroTrust.Monitoring.Detectors;

/// <summary>What a detector found: an alert to raise and, when configured, a device to suspend.</summary>
public sealed record Finding(string Detector, ReasonCode Reason, string? Subject, string? SourceAddress, string Detail, bool Suspend, DateTimeOffset At);

/// <summary>
/// The detectors' logic and state. Windows are measured in event time, not wall time, so replaying the stream after a
/// restart gives the same findings as seeing it live. Not thread-safe: one feed calls it at a time.
/// </summary>
public sealed class DetectorEngine(DetectorOptions options, IDeviceRegistry registry, TimeProvider timeProvider)
{
    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private readonly Dictionary<string, DeviceState> _devices = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SourceState> _sources = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string? Site, DateTimeOffset Until)> _deviceSites = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (SourcePrefixes Prefixes, DateTimeOffset Until)> _sitePrefixes = new(StringComparer.Ordinal);
    private static readonly TimeSpan LookupCacheTime = TimeSpan.FromMinutes(1);

    /// <summary>Where in the stream the state is up to (a Redis Stream entry id), when fed from the stream.</summary>
    public string? Position { get; set; }

    public int TrackedDevices => _devices.Count;

    public async Task<IReadOnlyList<Finding>> ObserveAsync(DecisionEvent e, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(e);
        List<Finding>? findings = null;
        void Found(Finding f) => (findings ??= []).Add(f);

        if (e.Kind == DecisionKind.Alert)
        {
            // The gateway's own clone check already raised this one: do not raise it twice.
            if (e.Reason == ReasonCode.CloneSuspected && e.Subject is not null)
            {
                Device(e.Subject).CloneAlertedAt = e.Time;
            }

            return [];
        }

        if (e.Kind == DecisionKind.Access && e.Outcome == DecisionOutcome.Deny && e.SourceAddress is not null && options.DenialBurst.Enabled)
        {
            DenialBurst(e, Found);
        }

        if (e.Kind == DecisionKind.Access && e.Outcome == DecisionOutcome.Allow && e.Listener == DecisionListener.Device && e.Subject is not null && e.SourceAddress is not null)
        {
            var device = Device(e.Subject);
            if (options.Clone.Enabled)
            {
                Clone(e, device, Found);
            }

            if (device.LastSeen is null || e.Time >= device.LastSeen)
            {
                (device.LastSeen, device.LastAddress, device.LastNode) = (e.Time, e.SourceAddress, e.Node);
                device.IdleAlertedAt = null;
            }

            if (options.SourcePrefix.Enabled)
            {
                await SourcePrefixAsync(e, device, Found, cancellationToken);
            }
        }

        if (e.Kind == DecisionKind.Attestation && e.Route == "attestation" && e.Subject is not null && options.LocationDrift.Enabled)
        {
            await LocationDriftAsync(e, Found, cancellationToken);
        }

        if (_devices.Count > options.MaxTracked || _sources.Count > options.MaxTracked)
        {
            Forget(e.Time);
        }

        return (IReadOnlyList<Finding>?)findings ?? [];
    }

    /// <summary>Active units not seen (by the gateway, or at attestation) for longer than allowed.</summary>
    public async Task<IReadOnlyList<Finding>> SweepIdleAsync(CancellationToken cancellationToken = default)
    {
        if (!options.Enabled || !options.Idle.Enabled)
        {
            return [];
        }

        var now = timeProvider.GetUtcNow();
        var findings = new List<Finding>();
        foreach (var record in await registry.ListAsync(DeviceLifecycleState.Active, cancellationToken))
        {
            _devices.TryGetValue(record.Serial, out var state);
            // Never seen since this state began: the unit's last registry activity (enrollment, attestation) counts.
            var lastSeen = Max(state?.LastSeen, Max(record.LastAttestedAt, record.UpdatedAt))!.Value;
            if (now - lastSeen <= options.Idle.After || state?.IdleAlertedAt is not null)
            {
                continue;
            }

            Device(record.Serial).IdleAlertedAt = now;
            findings.Add(new Finding("idle", ReasonCode.DeviceIdle, record.Serial, state?.LastAddress,
                $"not seen since {lastSeen:u} ({(now - lastSeen).TotalDays:0.#} days; the limit is {options.Idle.After.TotalDays:0.#})", options.Idle.SuspendDevice, now));
        }

        return findings;
    }

    private void Clone(DecisionEvent e, DeviceState device, Action<Finding> found)
    {
        if (device.LastSeen is not { } last || device.LastAddress is null || CloneRule.SamePlace(device.LastAddress, e.SourceAddress!))
        {
            return;
        }

        var apart = (e.Time - last).Duration();
        if (apart > options.Clone.Window || (device.CloneAlertedAt is { } alerted && (e.Time - alerted).Duration() <= options.Clone.Window))
        {
            return;
        }

        device.CloneAlertedAt = e.Time;
        var nodes = device.LastNode is not null && e.Node is not null && device.LastNode != e.Node ? $" (through {device.LastNode} and {e.Node})" : "";
        found(new Finding("clone", ReasonCode.CloneSuspected, e.Subject, e.SourceAddress,
            $"same identity allowed from {device.LastAddress} and {e.SourceAddress} {apart.TotalSeconds:0.#} s apart{nodes}", options.Clone.SuspendDevice, e.Time));
    }

    private void DenialBurst(DecisionEvent e, Action<Finding> found)
    {
        if (!_sources.TryGetValue(e.SourceAddress!, out var source))
        {
            _sources[e.SourceAddress!] = source = new SourceState();
        }

        var window = options.DenialBurst.Window;
        source.Denials.Enqueue(e.Time.UtcTicks);
        while (source.Denials.Count > 0 && e.Time.UtcTicks - source.Denials.Peek() > window.Ticks)
        {
            source.Denials.Dequeue();
        }

        while (source.Denials.Count > options.DenialBurst.Threshold)
        {
            source.Denials.Dequeue(); // only the count up to the threshold matters
        }

        if (source.Denials.Count < options.DenialBurst.Threshold || (source.AlertedAt is { } alerted && e.Time - alerted <= window))
        {
            return;
        }

        source.AlertedAt = e.Time;
        found(new Finding("denial-burst", ReasonCode.DenialBurst, e.Subject, e.SourceAddress,
            $"{options.DenialBurst.Threshold} or more denials from {e.SourceAddress} within {window.TotalSeconds:0} s (last: {ReasonCodes.Name(e.Reason)} on {DecisionNames.Name(e.Listener)})", false, e.Time));
    }

    private async Task SourcePrefixAsync(DecisionEvent e, DeviceState device, Action<Finding> found, CancellationToken cancellationToken)
    {
        if (!IPAddress.TryParse(e.SourceAddress, out var address))
        {
            return;
        }

        var prefixes = await PrefixesOfAsync(e.Subject!, cancellationToken);
        if (prefixes.Allows(address))
        {
            return; // inside the site's prefixes, or the site allows any source
        }

        if (device.PrefixAlertedAt is { } alerted && (e.Time - alerted).Duration() < options.SourcePrefix.RepeatAfter)
        {
            return;
        }

        device.PrefixAlertedAt = e.Time;
        found(new Finding("source-prefix", ReasonCode.SourceOutsidePrefixes, e.Subject, e.SourceAddress,
            $"{e.SourceAddress} is outside the site's allowed prefixes ({prefixes})", options.SourcePrefix.SuspendDevice, e.Time));
    }

    private async Task LocationDriftAsync(DecisionEvent e, Action<Finding> found, CancellationToken cancellationToken)
    {
        // The evidence's position is in the registry's attestation record, not in the event.
        var recent = await registry.GetAttestationsAsync(e.Subject!, 10, cancellationToken);
        var positioned = recent.Where(a => a.Latitude is not null && a.Longitude is not null).Take(2).ToList();
        if (positioned.Count < 2)
        {
            return;
        }

        var (current, previous) = (positioned[0], positioned[1]);
        var device = Device(e.Subject!);
        if (device.DriftCheckedAttestation == current.Id)
        {
            return; // already judged (a replayed event)
        }

        device.DriftCheckedAttestation = current.Id;
        var meters = GeoDistance.Meters(previous.Latitude!.Value, previous.Longitude!.Value, current.Latitude!.Value, current.Longitude!.Value);
        if (meters > options.LocationDrift.MaxMeters)
        {
            found(new Finding("location-drift", ReasonCode.LocationDrift, e.Subject, e.SourceAddress,
                $"reported position moved {meters:0} m between attestations at {previous.At:u} and {current.At:u} (limit {options.LocationDrift.MaxMeters:0} m)", options.LocationDrift.SuspendDevice, e.Time));
        }
    }

    private async Task<SourcePrefixes> PrefixesOfAsync(string serial, CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow();
        if (!_deviceSites.TryGetValue(serial, out var site) || site.Until < now)
        {
            site = ((await registry.FindAsync(serial, cancellationToken))?.Site, now + LookupCacheTime);
            _deviceSites[serial] = site;
        }

        if (site.Site is null)
        {
            return SourcePrefixes.Any;
        }

        if (!_sitePrefixes.TryGetValue(site.Site, out var prefixes) || prefixes.Until < now)
        {
            var found = await registry.FindSiteAsync(site.Site, cancellationToken);
            prefixes = (SourcePrefixes.ParseValid(found?.AllowedPrefixes ?? []), now + LookupCacheTime);
            _sitePrefixes[site.Site] = prefixes;
        }

        return prefixes.Prefixes;
    }

    /// <summary>Equal addresses; IPv4-mapped IPv6 equals its IPv4; <c>::1</c> and <c>127.0.0.1</c> are one host.</summary>

    private static DateTimeOffset? Max(DateTimeOffset? a, DateTimeOffset? b) => a is null ? b : b is null ? a : a > b ? a : b;

    private DeviceState Device(string serial)
    {
        if (!_devices.TryGetValue(serial, out var state))
        {
            _devices[serial] = state = new DeviceState();
        }

        return state;
    }

    /// <summary>Beyond the bound: drop source addresses with nothing in their window, then the longest-unseen devices.</summary>
    private void Forget(DateTimeOffset now)
    {
        foreach (var (address, source) in _sources.Where(s => s.Value.Denials.Count == 0 || now.UtcTicks - s.Value.Denials.Last() > options.DenialBurst.Window.Ticks).ToList())
        {
            _sources.Remove(address);
        }

        if (_devices.Count > options.MaxTracked)
        {
            foreach (var serial in _devices.OrderBy(d => d.Value.LastSeen ?? DateTimeOffset.MinValue).Take(_devices.Count - (options.MaxTracked * 9 / 10)).Select(d => d.Key).ToList())
            {
                _devices.Remove(serial);
            }
        }
    }

    /// <summary>The state as JSON, to be saved and restored after a restart.</summary>
    public string Snapshot() => JsonSerializer.Serialize(new Saved
    {
        Position = Position,
        Devices = _devices,
        Sources = _sources.ToDictionary(s => s.Key, s => new SavedSource { Denials = [.. s.Value.Denials], AlertedAt = s.Value.AlertedAt }),
    }, Json);

    /// <summary>Replaces the state with a saved one. A snapshot that cannot be read is refused (the state is then rebuilt from the stream).</summary>
    public void Restore(string json)
    {
        var saved = JsonSerializer.Deserialize<Saved>(json, Json) ?? throw new JsonException("Empty detector snapshot.");
        _devices.Clear();
        _sources.Clear();
        foreach (var (serial, device) in saved.Devices ?? [])
        {
            _devices[serial] = device;
        }

        foreach (var (address, source) in saved.Sources ?? [])
        {
            _sources[address] = new SourceState { AlertedAt = source.AlertedAt, Denials = new Queue<long>(source.Denials ?? []) };
        }

        Position = saved.Position;
    }

    public sealed class DeviceState
    {
        public DateTimeOffset? LastSeen { get; set; }

        public string? LastAddress { get; set; }

        public string? LastNode { get; set; }

        public DateTimeOffset? CloneAlertedAt { get; set; }

        public DateTimeOffset? PrefixAlertedAt { get; set; }

        public DateTimeOffset? IdleAlertedAt { get; set; }

        public string? DriftCheckedAttestation { get; set; }
    }

    private sealed class SourceState
    {
        public Queue<long> Denials { get; init; } = new();

        public DateTimeOffset? AlertedAt { get; set; }
    }

    private sealed class Saved
    {
        public int Version { get; set; } = 1;

        public string? Position { get; set; }

        public Dictionary<string, DeviceState>? Devices { get; set; }

        public Dictionary<string, SavedSource>? Sources { get; set; }
    }

    private sealed class SavedSource
    {
        public long[]? Denials { get; set; }

        public DateTimeOffset? AlertedAt { get; set; }
    }
}
