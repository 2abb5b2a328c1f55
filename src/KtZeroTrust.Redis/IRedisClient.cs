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

    /// <summary>
    /// Sends the commands as one MULTI/EXEC transaction, written as one piece on the shared connection: all of them run
    /// or (connection lost before EXEC, or a command refused while queued) none. Returns EXEC's reply, one element per
    /// command; an element may itself be an error (a command that failed while running).
    /// </summary>
    Task<RedisReply> ExecuteTransactionAsync(IReadOnlyList<RedisCommand> commands, CancellationToken cancellationToken = default);
}

/// <summary>One command of a transaction.</summary>
public readonly record struct RedisCommand(string Name, RedisArg[] Args);
