namespace KtZeroTrust.Server;

/// <summary>Log event ids of the server host (5000-5999). Never reuse a number.</summary>
internal static class ServerEventIds
{
    public const int Listening = 5000;
    public const int DevManifestImported = 5002;
    public const int DevCertificateIssued = 5003;
    public const int DevKeysBackfilled = 5004;
    public const int SharedKeyFound = 5005;
    public const int ConsoleAccountsUnavailable = 5006;
    public const int StartupRefused = 5010;
    public const int ConfigurationRefused = 5011;
    public const int WriteThroughFailed = 5020;
    // 5021 (decision stream disabled): logged by the pipeline now (Monitoring), under the same number.
    public const int ConsoleAdministratorCreated = 5030;
}
