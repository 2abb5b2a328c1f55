namespace KtZeroTrust.Hosting;

/// <summary>Log event ids of the shared hosting layer. The numbers are those the refusal recorders had in the gateway (1060-1069); never reuse one.</summary>
internal static class HostingEventIds
{
    public const int RequestRefused = 1060;
    public const int RequestFailed = 1061;
    public const int ConnectionRequestRefused = 1062;
    public const int QuarantineSkipped = 1063;
    public const int QuarantineFailed = 1064;
    public const int QuarantineNoRegistry = 1065;
}
