namespace KtZeroTrust.SocConsole.Accounts;

/// <summary>
/// Throttles password sign-in per account and per source address. After <see cref="FreeFailures"/> failures in a row
/// an account (or <see cref="FreeFailuresPerSource"/> for a source) must wait before the next try, doubling each time
/// up to <see cref="MaxDelay"/>; a success clears the account's count. <see cref="BurstThreshold"/> failures within
/// <see cref="Window"/> raise one alert per window and key. State is in memory: a restart forgets it, which at worst
/// grants an attacker the free tries again.
/// </summary>
public sealed class SignInGuard(TimeProvider timeProvider)
{
    public const int FreeFailures = 5;
    public const int FreeFailuresPerSource = 20;
    public const int BurstThreshold = 10;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(15);
    public static readonly TimeSpan MaxDelay = TimeSpan.FromMinutes(15);
    private const int MaxTracked = 100_000;

    private readonly object _gate = new();
    private readonly Dictionary<string, Counter> _counters = new(StringComparer.Ordinal);

    private sealed class Counter
    {
        public int Failures;
        public DateTimeOffset LastFailure;
        public DateTimeOffset BlockedUntil;
        public DateTimeOffset AlertedAt = DateTimeOffset.MinValue;
    }

    /// <summary>When sign-in must wait for this account or source: how long is left (null: it may try now).</summary>
    public TimeSpan? RetryAfter(string account, string? source)
    {
        var now = timeProvider.GetUtcNow();
        lock (_gate)
        {
            var wait = TimeSpan.Zero;
            foreach (var key in Keys(account, source))
            {
                if (_counters.TryGetValue(key, out var c) && c.BlockedUntil > now && c.BlockedUntil - now > wait)
                {
                    wait = c.BlockedUntil - now;
                }
            }

            return wait > TimeSpan.Zero ? wait : null;
        }
    }

    /// <summary>
    /// Counts a failure (or, with <paramref name="whileThrottled"/>, an attempt refused while waiting: it counts toward
    /// the burst alert but does not lengthen the wait); returns the keys (<c>account:x</c>, <c>source:y</c>) that just
    /// crossed the burst threshold.
    /// </summary>
    public IReadOnlyList<string> Failed(string account, string? source, bool whileThrottled = false)
    {
        var now = timeProvider.GetUtcNow();
        var bursts = new List<string>();
        lock (_gate)
        {
            if (_counters.Count >= MaxTracked)
            {
                Forget(now);
            }

            foreach (var key in Keys(account, source))
            {
                if (!_counters.TryGetValue(key, out var c) || now - c.LastFailure > Window)
                {
                    _counters[key] = c = new Counter();
                }

                c.Failures++;
                c.LastFailure = now;
                var free = key.StartsWith("source:", StringComparison.Ordinal) ? FreeFailuresPerSource : FreeFailures;
                if (c.Failures >= free && !whileThrottled)
                {
                    var doubling = Math.Min(c.Failures - free, 10);
                    var delay = TimeSpan.FromSeconds(Math.Min(MaxDelay.TotalSeconds, Math.Pow(2, doubling)));
                    c.BlockedUntil = now + delay;
                }

                if (c.Failures >= BurstThreshold && now - c.AlertedAt > Window)
                {
                    c.AlertedAt = now;
                    bursts.Add(key);
                }
            }
        }

        return bursts;
    }

    public void Succeeded(string account)
    {
        lock (_gate)
        {
            _counters.Remove("account:" + account.ToLowerInvariant());
        }
    }

    private static IEnumerable<string> Keys(string account, string? source)
    {
        yield return "account:" + account.ToLowerInvariant();
        if (source is not null)
        {
            yield return "source:" + source;
        }
    }

    private void Forget(DateTimeOffset now)
    {
        foreach (var (key, c) in _counters.Where(kv => now - kv.Value.LastFailure > Window).ToList())
        {
            _counters.Remove(key);
        }
    }
}
