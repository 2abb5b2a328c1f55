using KtZeroTrust.Redis;

namespace KtZeroTrust.SocConsole.Authentication;

/// <summary>
/// Connects to the console's shared Redis while the node starts, so the Data Protection key ring (read synchronously by
/// ASP.NET Core) finds a connection; bounded, and a failure is logged, never fatal: the sessions' own calls connect
/// again, and until then nobody signs in (fail closed).
/// </summary>
internal sealed partial class ConsoleRedisConnector(RedisConnection connection, ILogger<ConsoleRedisConnector> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await connection.ConnectAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
        }
        catch (Exception ex) when (ex is StackExchange.Redis.RedisException or TimeoutException)
        {
            LogConnectFailed(logger, connection.Description, ex);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = ConsoleEventIds.SharedStateUnavailable, Level = LogLevel.Error, Message = "The console's shared Redis ({Redis}) did not answer at start: sign-ins wait for it")]
    private static partial void LogConnectFailed(ILogger logger, string redis, Exception exception);
}
