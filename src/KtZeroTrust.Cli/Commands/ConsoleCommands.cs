using System.CommandLine;

namespace KtZeroTrust.Cli.Commands;

/// <summary><c>ztctl console login</c>: a session token for the admin API (<c>--server</c>), for scripts.</summary>
internal static class ConsoleCommands
{
    public static Command Create()
    {
        var user = new Option<string>("--user") { Description = "Console user", Required = true };
        var password = new Option<string?>("--password") { Description = "Password. Default: $ZT_PASSWORD" };
        var newPassword = new Option<string?>("--new-password") { Description = "Replace a one-time password (12+ characters)" };
        var login = new Command("login", "Sign in to the admin API and print a session token (use it as --token or $ZT_TOKEN)") { user, password, newPassword };
        login.SetAction(CliContext.Run(async (ctx, ct) =>
        {
            using var api = ctx.AdminApi() ?? throw new FormatException("console login needs --server (or $ZT_SERVER).");
            var secret = ctx.ParseResult.GetValue(password) ?? Environment.GetEnvironmentVariable("ZT_PASSWORD") ?? throw new FormatException("Give --password or $ZT_PASSWORD.");
            var result = await api.LoginAsync(ctx.ParseResult.GetValue(user)!, secret, ctx.ParseResult.GetValue(newPassword), ct);
            ctx.Out.WriteLine(ctx.AsJson ? result.ToString() : result.GetProperty("token").GetString());
            return ExitCodes.Success;
        }));
        return new Command("console", "The server's SOC console and admin API") { login };
    }
}
