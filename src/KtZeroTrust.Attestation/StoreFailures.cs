namespace KtZeroTrust.Attestation;

/// <summary>
/// The exceptions that mean "a store this answer needs (the registry's database, Redis) did not answer": the unit is
/// told to come back later (503, CMP systemUnavail) and nothing is issued or recorded; fail closed, never a 500.
/// </summary>
internal static class StoreFailures
{
    public static bool Is(Exception exception)
        => exception is StackExchange.Redis.RedisException or TimeoutException or System.Data.Common.DbException;
}
