using Microsoft.Extensions.Options;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Server;
using KtZeroTrust.Server.Pki;

try
{
    var app = ZeroTrustServer.Build(args);
    await ZeroTrustServer.PrepareAsync(app);
    await app.RunAsync();
    return 0;
}
catch (Exception ex) when (ex is StartupException or PkiException or OptionsValidationException or InvalidOperationException or IOException)
{
    // A clear one-line reason instead of a stack trace for configuration and environment problems.
    await Console.Error.WriteLineAsync($"ktzerotrust: cannot start: {ex.Message}");
    if (Environment.GetEnvironmentVariable("ZT_DEBUG") == "1") { await Console.Error.WriteLineAsync(ex.ToString()); }
    return 1;
}
