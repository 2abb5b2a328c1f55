using System.Collections.Concurrent;
using System.Threading.Channels;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.Pipeline;

namespace KtZeroTrust.SocConsole.Decisions;

/// <summary>
/// The console's lane of the decision pipeline: fans every decision out to the live feeds (server-sent events; a slow
/// browser loses its oldest undelivered events, never slows the pipeline), keeps the last hour per minute for the chart
/// and the top deny reasons, and each device's last sighting for the inventory.
/// </summary>
public sealed class ConsoleFeed(TimeProvider timeProvider) : IDecisionExportSink
{
    private readonly ConcurrentDictionary<Channel<JournaledDecision>, byte> _subscribers = new();
    private readonly ConcurrentDictionary<string, (DateTimeOffset At, string? Address)> _lastSeen = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private readonly Dictionary<long, (long Allow, long Deny)> _perMinute = [];
    private readonly Dictionary<ReasonCode, long> _denyReasons = [];

    public string Name => "console";

    public Task WriteBatchAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        lock (_gate)
        {
            foreach (var e in batch.Select(j => j.Event))
            {
                var minute = e.Time.ToUnixTimeSeconds() / 60;
                var (allow, deny) = _perMinute.GetValueOrDefault(minute);
                _perMinute[minute] = e.Outcome == DecisionOutcome.Allow ? (allow + 1, deny) : (allow, deny + 1);
                if (e.Outcome == DecisionOutcome.Deny && e.Kind is DecisionKind.Access or DecisionKind.Attestation or DecisionKind.Enrollment)
                {
                    _denyReasons[e.Reason] = _denyReasons.GetValueOrDefault(e.Reason) + 1;
                }
            }

            var horizon = (timeProvider.GetUtcNow().ToUnixTimeSeconds() / 60) - 60;
            foreach (var old in _perMinute.Keys.Where(k => k < horizon).ToList())
            {
                _perMinute.Remove(old);
            }
        }

        foreach (var e in batch.Select(j => j.Event))
        {
            if (e.Kind == DecisionKind.Access && e.Outcome == DecisionOutcome.Allow && e.Listener == DecisionListener.Device && e.Subject is not null)
            {
                _lastSeen[e.Subject] = (e.Time, e.SourceAddress);
            }
        }

        foreach (var subscriber in _subscribers.Keys)
        {
            foreach (var e in batch)
            {
                subscriber.Writer.TryWrite(e);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>A live feed; dispose the subscription to end it.</summary>
    public Subscription Subscribe()
    {
        var channel = Channel.CreateBounded<JournaledDecision>(new BoundedChannelOptions(2048) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        _subscribers[channel] = 0;
        return new Subscription(channel, () => _subscribers.TryRemove(channel, out _));
    }

    public (DateTimeOffset At, string? Address)? LastSeen(string serial) => _lastSeen.TryGetValue(serial, out var seen) ? seen : null;

    /// <summary>Allowed and denied per minute for the last hour (oldest first), and the most frequent deny reasons.</summary>
    public (IReadOnlyList<(DateTimeOffset Minute, long Allow, long Deny)> PerMinute, IReadOnlyList<(string Reason, long Count)> TopDenyReasons) Summary()
    {
        var now = timeProvider.GetUtcNow().ToUnixTimeSeconds() / 60;
        lock (_gate)
        {
            var minutes = Enumerable.Range(0, 60).Select(i => now - 59 + i)
                .Select(m => (DateTimeOffset.FromUnixTimeSeconds(m * 60), _perMinute.GetValueOrDefault(m).Allow, _perMinute.GetValueOrDefault(m).Deny)).ToList();
            var top = _denyReasons.OrderByDescending(r => r.Value).Take(8).Select(r => (ReasonCodes.Name(r.Key), r.Value)).ToList();
            return (minutes, top);
        }
    }

    public sealed class Subscription(Channel<JournaledDecision> channel, Action end) : IDisposable
    {
        public ChannelReader<JournaledDecision> Reader => channel.Reader;

        public void Dispose() => end();
    }
}
