using KtZeroTrust.Core.Decisions;

namespace KtZeroTrust.SocConsole.Auditing;

/// <summary>
/// Rate limit for refusals the console audits (no session, bad token, missing anti-forgery header, throttled sign-in):
/// the first <see cref="PerMinute"/> per source and reason in a minute are recorded one by one; the rest are counted,
/// and the count is recorded as one summary decision when the minute ends. A flood costs the decision stream a bounded
/// number of events, and the SOC still sees how many there were.
/// </summary>
public sealed class AuditThrottle : IDisposable
{
    public const int PerMinute = 20;
    private const int MaxTracked = 50_000;

    private readonly object _gate = new();
    private readonly Dictionary<(string Source, ReasonCode Reason), (int Count, string Path)> _window = [];
    private readonly IDecisionSink _decisions;
    private readonly DecisionFactory _factory;
    private readonly ITimer _timer;

    public AuditThrottle(IDecisionSink decisions, DecisionFactory factory, TimeProvider timeProvider)
    {
        _decisions = decisions;
        _factory = factory;
        _timer = timeProvider.CreateTimer(_ => Flush(), null, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
    }

    /// <summary>True when this refusal is to be recorded individually; false when it is only counted for the summary.</summary>
    public bool Admit(string? source, ReasonCode reason, string? path)
    {
        var key = (source ?? "unknown", reason);
        lock (_gate)
        {
            if (_window.Count >= MaxTracked && !_window.ContainsKey(key))
            {
                key = ("(many sources)", reason); // bounded memory under a spray from many addresses
            }

            var (count, firstPath) = _window.GetValueOrDefault(key, (0, path ?? ""));
            _window[key] = (count + 1, firstPath);
            return count < PerMinute;
        }
    }

    /// <summary>Records what was counted beyond the limit in the minute that ended.</summary>
    public void Flush()
    {
        List<((string Source, ReasonCode Reason) Key, int Suppressed, string Path)> over;
        lock (_gate)
        {
            over = [.. _window.Where(kv => kv.Value.Count > PerMinute).Select(kv => (kv.Key, kv.Value.Count - PerMinute, kv.Value.Path))];
            _window.Clear();
        }

        foreach (var (key, suppressed, path) in over)
        {
            _decisions.Post(_factory.Admin(DecisionOutcome.Deny, key.Reason, null, new DecisionOrigin(key.Source, Path: path, Route: "console:refusals"),
                $"{suppressed} more refusals ({ReasonCodes.Name(key.Reason)}) from {key.Source} in the last minute, beyond the {PerMinute} recorded one by one"));
        }
    }

    public void Dispose() => _timer.Dispose();
}
