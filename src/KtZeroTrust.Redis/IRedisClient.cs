namespace KtZeroTrust.Redis;

/// <summary>
/// The narrow interface the product uses, so the client could be swapped for StackExchange.Redis where that restores.
/// Typed commands are extension methods over <see cref="ExecuteAsync"/> (<see cref="RedisCommands"/>).
/// </summary>
public interface IRedisClient : IAsyncDisposable
{
    string Endpoint { get; }

    bool IsConnected { get; }

    event EventHandler<RedisConnectionEventArgs>? ConnectionFailed;

    event EventHandler<RedisConnectionEventArgs>? ConnectionRestored;

    /// <summary>
    /// Sends one command on the shared connection and returns its reply. Never waits for a connection: when there is
    /// none it fails at once with <see cref="RedisConnectionException"/>. Server errors throw
    /// <see cref="RedisServerException"/>; no reply within the command timeout throws <see cref="RedisTimeoutException"/>.
    /// </summary>
    Task<RedisReply> ExecuteAsync(string command, ReadOnlySpan<RedisArg> args, CancellationToken cancellationToken = default);
}
