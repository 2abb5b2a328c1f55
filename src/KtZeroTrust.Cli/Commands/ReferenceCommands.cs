using System.CommandLine;
using KtZeroTrust.Pki.Manifests;

namespace KtZeroTrust.Cli.Commands;

internal static class ReferenceCommands
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "Reference values (JSON): sites, firmware, models; see docs/attestation.md" };
        var import = new Command("import", "Add or replace install sites, firmware reference values and model policies") { file };
        import.SetAction(CliContext.Run(async (ctx, ct) =>
        {
            var values = ReferenceValuesFile.Load(Path.GetFullPath(ctx.ParseResult.GetValue(file)!));
            await (await ctx.OpenRegistryAsync(ct)).ImportReferenceValuesAsync(values, CliContext.Actor, ct);
            if (ctx.AsJson)
            {
                ctx.WriteJson(new { sites = values.Sites.Count, firmware = values.Firmware.Count, models = values.Models.Count });
            }
            else
            {
                ctx.Out.WriteLine($"Imported {values.Sites.Count} sites, {values.Firmware.Count} firmware builds, {values.Models.Count} model policies.");
            }

            return ExitCodes.Success;
        }));
        return new Command("reference", "Attestation reference values") { import };
    }
}
