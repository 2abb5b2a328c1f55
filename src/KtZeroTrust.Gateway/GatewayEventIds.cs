namespace KtZeroTrust.Gateway;

/// <summary>Log event ids of the gateway (1000-1999). Never reuse a number.</summary>
internal static class GatewayEventIds
{
    public const int AllowListLoaded = 1000;
    public const int AllowListRefreshFailed = 1001;
    public const int AllowListFeedLost = 1002;
    public const int AllowListStale = 1003;
    public const int AllowListResynchronised = 1004;
    public const int AllowListResyncFailed = 1005;
    public const int AllowListMessageRejected = 1006;
    public const int AllowListLookupFailed = 1007;
    public const int AllowListRedisSyncFailed = 1008;
    public const int AllowListRedisConnecting = 1009;
    public const int ConnectionsAborted = 1015;
    public const int CloneSuspected = 1040;
    // 1041 (clone suspension failed): retired, the quarantine logs it (Hosting, 1063-1065).
    public const int HandshakeRejected = 1010;
    public const int HandshakesShed = 1011;
    public const int RequestDenied = 1020;
    public const int ProxyConfigRejected = 1030;
    public const int PoliciesLoaded = 1050;
    public const int PoliciesRejected = 1051;
    public const int UserRequestDenied = 1052;
    // 1060-1069: the refusal recorders', now in Hosting under the same numbers.
}
