using System.CommandLine;
using KtZeroTrust.Pki.DevPki;

namespace KtZeroTrust.Cli.Commands;

internal static class PkiCommands
{
    public static Command Create()
    {
        var force = new Option<bool>("--force") { Description = "Replace an existing PKI (every issued certificate stops working)" };
        var init = new Command("init", "Create the development PKI: vendor root, operator device CA, TLS root and server certificate, and IDevIDs for the manifest's devices")
        {
            force,
        };
        init.SetAction(CliContext.Run((ctx, _) =>
        {
            var layout = new DevPkiLayout(ctx.PkiDirectory);
            var written = DevelopmentPki.Initialize(layout, ctx.ParseResult.GetValue(force), TimeProvider.System);
            if (ctx.AsJson)
            {
                ctx.WriteJson(new { directory = layout.Directory, files = written });
            }
            else
            {
                ctx.Out.WriteLine($"Development PKI created in {layout.Directory} ({written.Count} files). For development only.");
                foreach (var file in written)
                {
                    ctx.Out.WriteLine("  " + Path.GetRelativePath(layout.Directory, file));
                }
            }

            return Task.FromResult(ExitCodes.Success);
        }));

        return new Command("pki", "Development PKI") { init };
    }
}
