using Microsoft.Extensions.Options;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Server;
using KtZeroTrust.Server.Pki;

// --verbose (or ZT_DEBUG=1): a refused start also prints the exception with its stack trace.
var verbose = args.Contains("--verbose") || Environment.GetEnvironmentVariable("ZT_DEBUG") == "1";
args = [.. args.Where(a => a != "--verbose")];
if (verbose)
{
    Environment.SetEnvironmentVariable("ZT_DEBUG", "1");
}

ServerOptions? options = null; // captured before the run: a host that failed to start is disposed by then
try
{
    var app = ZeroTrustServer.Build(args);
    options = app.Services.GetRequiredService<IOptions<ServerOptions>>().Value;
    await ZeroTrustServer.PrepareAsync(app);
    await app.RunAsync();
    return 0;
}
catch (Exception ex) when (ZeroTrustServer.ExplainStartFailure(ex, options) is { } reason)
{
    // One line with a stable ZT-START id instead of a stack trace, for configuration and environment problems.
    await Console.Error.WriteLineAsync($"ktzerotrust: cannot start: {reason}");
    if (verbose)
    {
        await Console.Error.WriteLineAsync(ex.ToString());
    }

    return 1;
}
