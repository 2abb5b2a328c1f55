using StackExchange.Redis;

namespace KtZeroTrust.Redis;

/// <summary>What a Redis outage or refusal throws: <see cref="RedisException"/> (connection, server error) and
/// <see cref="RedisTimeoutException"/>, which StackExchange.Redis derives from <see cref="TimeoutException"/>.</summary>
public static class RedisFailure
{
    public static bool Is(Exception exception) => exception is RedisException or RedisTimeoutException;
}
