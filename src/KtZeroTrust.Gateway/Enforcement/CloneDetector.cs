using System.Collections.Concurrent;
using System.Net;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Hosting.Devices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Gateway.Enforcement;

/// <summary>
/// Attack 2 of the threat model: one device identity used from two places at once. Every allowed device request
/// records where it came from; a request for the same device from another address within the window is refused
/// (<c>clone_suspected</c>), raised as an alert, and (by default) the device is suspended so every node cuts it off.
/// Per request it is one dictionary lookup and a reference comparison (the address object belongs to the connection),
/// no allocation. State is in memory: a restart forgets it (the decision stream will carry it across restarts).
/// </summary>
public sealed partial class CloneDetector(
    IOptions<CloneDetectionOptions> options,
    IDecisionSink decisions,
    DecisionFactory decisionFactory,
    DeviceQuarantine quarantine,
    ILogger<CloneDetector> logger)
{
    private readonly ConcurrentDictionary<string, Sighting> _seen = new(StringComparer.Ordinal);
    private readonly long _windowTicks = options.Value.Window.Ticks;

    /// <summary>True when this request shows a clone; the alert is raised, <paramref name="detail"/> says why.</summary>
    public bool IsClone(string serial, IPAddress? source, long nowUtcTicks, out string? detail)
    {
        detail = null;
        if (!options.Value.Enabled || source is null)
        {
            return false;
        }

        if (!_seen.TryGetValue(serial, out var last))
        {
            if (_seen.Count >= options.Value.MaxTracked)
            {
                Forget(nowUtcTicks);
            }

            _seen[serial] = new Sighting(source, nowUtcTicks);
            return false;
        }

        if (!CloneRule.IsClone(last.Address, new DateTimeOffset(last.Ticks, TimeSpan.Zero), source, new DateTimeOffset(nowUtcTicks, TimeSpan.Zero), options.Value.Window))
        {
            last.Address = source;
            last.Ticks = nowUtcTicks;
            return false;
        }

        detail = $"same identity from {last.Address} and {source} within {options.Value.Window.TotalSeconds:0} s";
        Alert(serial, last.Address, source);
        return true;
    }

    private void Alert(string serial, IPAddress first, IPAddress second)
    {
        LogClone(logger, serial, first, second);
        decisions.Post(decisionFactory.Alert(DecisionListener.Device, ReasonCode.CloneSuspected, serial, new DecisionOrigin(second.ToString(), Route: "detector:clone")));
    }

    /// <summary>
    /// Acts on a detection: suspends the device, which every node applies and which aborts all its connections. Called
    /// once the refusal has been sent (an abort before that would reset the very connection carrying the 403).
    /// </summary>
    public async Task SuspendAsync(string serial, string detail)
    {
        if (options.Value.SuspendDevice)
        {
            await quarantine.SuspendAsync(DecisionListener.Device, "clone", ReasonCode.CloneSuspected, serial, detail);
        }
    }

    private void Forget(long nowUtcTicks)
    {
        foreach (var pair in _seen)
        {
            if (nowUtcTicks - pair.Value.Ticks > _windowTicks)
            {
                _seen.TryRemove(pair);
            }
        }

        if (_seen.Count >= options.Value.MaxTracked)
        {
            _seen.Clear();
        }
    }

    private sealed class Sighting(IPAddress address, long ticks)
    {
        public IPAddress Address { get; set; } = address;

        public long Ticks { get; set; } = ticks;
    }

    [LoggerMessage(EventId = GatewayEventIds.CloneSuspected, Level = LogLevel.Warning, Message = "Clone suspected: device {Serial} from {First} and {Second}")]
    private static partial void LogClone(ILogger logger, string serial, IPAddress first, IPAddress second);
}
