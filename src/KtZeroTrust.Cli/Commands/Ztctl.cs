using System.CommandLine;

namespace KtZeroTrust.Cli.Commands;

/// <summary>The ztctl command tree.</summary>
internal static class Ztctl
{
    public static RootCommand Create()
    {
        var root = new RootCommand("ztctl: operate KtZeroTrust (device registry, development PKI)")
        {
            CliContext.DataDir,
            CliContext.PkiDir,
            CliContext.Redis,
            CliContext.Postgres,
            CliContext.Server,
            CliContext.Token,
            CliContext.ServerCa,
            CliContext.Json,
            ConsoleCommands.Create(),
            PkiCommands.Create(),
            DeviceCommands.Create(),
            CertCommands.Create(),
            ReferenceCommands.Create(),
            SimulateCommands.Create(),
            DecisionCommands.Create(),
        };
        return root;
    }

    public static Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
        => Create().Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, cancellationToken);
}
