using System.CommandLine;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Pki.Manifests;

namespace KtZeroTrust.Cli.Commands;

internal static class DeviceCommands
{
    public static Command Create()
    {
        var device = new Command("device", "The device registry");
        device.Add(Import());
        device.Add(List());
        device.Add(Show());
        device.Add(Lifecycle("suspend", DeviceLifecycleState.Suspended, "Suspend a device: its certificates stop passing the gateway until it is resumed"));
        device.Add(Lifecycle("resume", DeviceLifecycleState.Active, "Return a suspended device to Active"));
        device.Add(Lifecycle("revoke", DeviceLifecycleState.Revoked, "Revoke a device for good (lost, stolen, cloned); its certificates are revoked"));
        device.Add(Lifecycle("decommission", DeviceLifecycleState.Decommissioned, "Retire a device (terminal)"));
        return device;
    }

    private static Command Import()
    {
        var manifest = new Argument<string>("manifest") { Description = "Manufacturing manifest (JSON)" };
        var command = new Command("import", "Import devices from a manufacturing manifest as Provisioned") { manifest };
        command.SetAction(CliContext.Run(async (ctx, ct) =>
        {
            var path = Path.GetFullPath(ctx.ParseResult.GetValue(manifest)!);
            var parsed = ManufacturingManifest.Load(path);
            var vendorRootPath = new DevPkiLayout(ctx.PkiDirectory).VendorRootCertificate;
            using var vendorRoot = File.Exists(vendorRootPath) ? PemFiles.ReadCertificate(vendorRootPath) : null;
            var result = await (await ctx.OpenRegistryAsync(ct)).ImportAsync(parsed.ResolveDevices(path, vendorRoot), CliContext.Actor, ct);
            if (ctx.AsJson)
            {
                ctx.WriteJson(new { imported = result.Imported, alreadyKnown = result.AlreadyKnown });
            }
            else
            {
                ctx.Out.WriteLine($"Imported {result.Imported.Count} devices; {result.AlreadyKnown.Count} already known.");
            }

            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command List()
    {
        var state = new Option<string?>("--state") { Description = "Only devices in this state (Provisioned, Active, Suspended, Revoked, Decommissioned)" };
        var command = new Command("list", "List devices") { state };
        command.SetAction(CliContext.Run(async (ctx, ct) =>
        {
            DeviceLifecycleState? filter = null;
            if (ctx.ParseResult.GetValue(state) is { } text)
            {
                if (!DeviceLifecycle.TryParse(text, out var parsed))
                {
                    await ctx.Error.WriteLineAsync($"error: unknown state '{text}'.");
                    return ExitCodes.Usage;
                }

                filter = parsed;
            }

            var devices = await (await ctx.OpenRegistryAsync(ct)).ListAsync(filter, ct);
            if (ctx.AsJson)
            {
                ctx.WriteJson(devices);
                return ExitCodes.Success;
            }

            ctx.Out.WriteLine($"{"SERIAL",-16} {"MODEL",-14} {"STATE",-15} SITE");
            foreach (var d in devices)
            {
                ctx.Out.WriteLine($"{d.Serial,-16} {d.Model,-14} {d.State,-15} {d.Site}");
            }

            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Show()
    {
        var serial = new Argument<string>("serial") { Description = "Device serial" };
        var command = new Command("show", "Show a device, its certificates and its lifecycle history") { serial };
        command.SetAction(CliContext.Run(async (ctx, ct) =>
        {
            var registry = await ctx.OpenRegistryAsync(ct);
            var s = ctx.ParseResult.GetValue(serial)!;
            var device = await registry.FindAsync(s, ct)
                ?? throw new RegistryException(RegistryException.DeviceNotFound, $"No device with serial '{s}'.");
            var certificates = await registry.GetCertificatesAsync(s, ct);
            var history = await registry.GetHistoryAsync(s, ct);
            if (ctx.AsJson)
            {
                ctx.WriteJson(new { device, certificates, history });
                return ExitCodes.Success;
            }

            ctx.Out.WriteLine($"Serial:   {device.Serial}");
            ctx.Out.WriteLine($"Model:    {device.Model}");
            ctx.Out.WriteLine($"State:    {device.State}");
            ctx.Out.WriteLine($"Site:     {device.Site}");
            ctx.Out.WriteLine($"IDevID:   {device.IDevIdSha256 ?? "-"}");
            ctx.Out.WriteLine("Certificates:");
            foreach (var c in certificates)
            {
                ctx.Out.WriteLine($"  {c.Sha256}  until {c.NotAfter:u}{(c.RevokedAt is { } r ? $"  revoked {r:u}" : "")}");
            }

            ctx.Out.WriteLine("History:");
            foreach (var h in history)
            {
                ctx.Out.WriteLine($"  {h.At:u}  {h.From?.ToString() ?? "-"} -> {h.To}  by {h.Actor}: {h.Reason}");
            }

            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Lifecycle(string name, DeviceLifecycleState target, string description)
    {
        var serial = new Argument<string>("serial") { Description = "Device serial" };
        var reason = new Option<string>("--reason") { Description = "Why (recorded with the change)", Required = true };
        var command = new Command(name, description) { serial, reason };
        command.SetAction(CliContext.Run(async (ctx, ct) =>
        {
            if (ctx.AdminApi() is { } api)
            {
                // Through the server: the console's action, with the signed-in user as the actor, audited there.
                using (api)
                {
                    var result = await api.ActionAsync(ctx.ParseResult.GetValue(serial)!, name, ctx.ParseResult.GetValue(reason)!, ct);
                    ctx.Out.WriteLine(ctx.AsJson ? result.ToString() : $"{result.GetProperty("serial").GetString()} is now {result.GetProperty("state").GetString()}.");
                    return ExitCodes.Success;
                }
            }

            var device = await (await ctx.OpenRegistryAsync(ct)).TransitionAsync(ctx.ParseResult.GetValue(serial)!, target, CliContext.Actor, ctx.ParseResult.GetValue(reason)!, ct);
            if (ctx.AsJson)
            {
                ctx.WriteJson(device);
            }
            else
            {
                ctx.Out.WriteLine($"{device.Serial} is now {device.State}.");
            }

            return ExitCodes.Success;
        }));
        return command;
    }
}
