namespace KtZeroTrust.Redis;

/// <summary>Exponential reconnect delay with jitter, so many nodes do not reconnect in lockstep after an outage.</summary>
internal sealed class Backoff(TimeSpan min, TimeSpan max)
{
    private TimeSpan _next = min;

    public TimeSpan Next()
    {
        var current = _next;
        _next = TimeSpan.FromTicks(Math.Min(max.Ticks, current.Ticks * 2));
#pragma warning disable CA5394 // jitter, not security
        return current * (0.5 + (Random.Shared.NextDouble() / 2));
#pragma warning restore CA5394
    }
}

/// <summary>Raised when a connection is lost or comes back.</summary>
public sealed class RedisConnectionEventArgs(string endpoint, Exception? error) : EventArgs
{
    public string Endpoint { get; } = endpoint;

    /// <summary>Why the connection was lost; null when it was restored.</summary>
    public Exception? Error { get; } = error;
}
