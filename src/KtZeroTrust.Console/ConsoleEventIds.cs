namespace KtZeroTrust.SocConsole;

/// <summary>Log event ids of the SOC console (5030-5049, the numbers it had in the server). Never reuse a number.</summary>
internal static class ConsoleEventIds
{
    public const int ConsoleFeedFailed = 5031;
    public const int SessionStoreFailed = 5032;
    public const int SharedStateUnavailable = 5033;
    public const int StoreUnavailable = 5034;
}
