namespace KtZeroTrust.Gateway;

/// <summary>Log event ids of the gateway (1000-1999). Never reuse a number.</summary>
internal static class GatewayEventIds
{
    public const int AllowListLoaded = 1000;
    public const int AllowListRefreshFailed = 1001;
    public const int HandshakeRejected = 1010;
    public const int RequestDenied = 1020;
    public const int ProxyConfigRejected = 1030;
}
