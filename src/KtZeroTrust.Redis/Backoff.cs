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

internal static class Reconnection
{
    /// <summary>Retries <paramref name="connect"/> with backoff until it succeeds (true) or shutdown (false).</summary>
    public static async Task<bool> UntilConnectedAsync(RedisOptions options, Func<CancellationToken, Task> connect, Action<Exception> onFailure, CancellationToken shutdown)
    {
        var backoff = new Backoff(options.ReconnectMinDelay, options.ReconnectMaxDelay);
        try
        {
            while (!shutdown.IsCancellationRequested)
            {
                await Task.Delay(backoff.Next(), shutdown);
                try
                {
                    await connect(shutdown);
                    return true;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    onFailure(ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        return false;
    }
}

/// <summary>Raised when a connection is lost or comes back.</summary>
public sealed class RedisConnectionEventArgs(string endpoint, Exception? error) : EventArgs
{
    public string Endpoint { get; } = endpoint;

    /// <summary>Why the connection was lost; null when it was restored.</summary>
    public Exception? Error { get; } = error;
}
