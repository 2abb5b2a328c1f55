using System.Text.Json;
using KtZeroTrust.Cli.Commands;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Cli.Tests;

public sealed class ZtctlTests : IDisposable
{
    private readonly TempDirectory _temp = new("ztctl");

    private async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var all = args.Concat(["--data-dir", _temp.Combine("data"), "--pki-dir", _temp.Combine("pki")]).ToArray();
        var code = await Ztctl.RunAsync(all, output, error, TestContext.Current.CancellationToken);
        return (code, output.ToString(), error.ToString());
    }

    private async Task InitWithManifest()
    {
        Directory.CreateDirectory(_temp.Combine("pki"));
        await File.WriteAllTextAsync(_temp.Combine("pki", "manifest.json"),
            """{"devices":[{"serial":"FC-1","model":"M","site":"s1","idevidCertificate":"idevid/FC-1.pem"},{"serial":"FC-2","model":"M","idevidCertificate":"idevid/FC-2.pem"}]}""",
            TestContext.Current.CancellationToken);
        Assert.Equal(0, (await Run("pki", "init")).Code);
    }

    [Fact]
    public async Task PkiInit_CreatesFiles_AndRefusesToOverwriteWithoutForce()
    {
        await InitWithManifest();
        Assert.True(File.Exists(_temp.Combine("pki", "operator-ca.key.pem")));
        Assert.True(File.Exists(_temp.Combine("pki", "idevid", "FC-2.pem")));

        var again = await Run("pki", "init");
        Assert.Equal(ExitCodes.Refused, again.Code);
        Assert.Contains("--force", again.Err, StringComparison.Ordinal);
        Assert.Equal(0, (await Run("pki", "init", "--force")).Code);
    }

    [Fact]
    public async Task ImportIssueRevoke_Flow_WithJsonOutput()
    {
        await InitWithManifest();
        var import = await Run("device", "import", _temp.Combine("pki", "manifest.json"), "--json");
        Assert.Equal(0, import.Code);
        Assert.Equal(2, JsonDocument.Parse(import.Out).RootElement.GetProperty("imported").GetArrayLength());

        var issue = await Run("cert", "issue", "FC-1", "--validity", "02:00:00", "--json");
        Assert.Equal(0, issue.Code);
        var issued = JsonDocument.Parse(issue.Out).RootElement;
        Assert.True(File.Exists(issued.GetProperty("certificate").GetString()));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(issued.GetProperty("key").GetString()!));

        var revoke = await Run("device", "revoke", "FC-1", "--reason", "stolen");
        Assert.Equal(0, revoke.Code);
        Assert.Contains("Revoked", revoke.Out, StringComparison.Ordinal);

        var show = JsonDocument.Parse((await Run("device", "show", "FC-1", "--json")).Out).RootElement;
        Assert.Equal("Revoked", show.GetProperty("device").GetProperty("state").GetString());
        Assert.Equal("stolen", show.GetProperty("history")[2].GetProperty("reason").GetString());
        Assert.True(show.GetProperty("certificates")[0].TryGetProperty("revokedAt", out var revokedAt) && revokedAt.ValueKind == JsonValueKind.String);

        var list = JsonDocument.Parse((await Run("device", "list", "--state", "provisioned", "--json")).Out).RootElement;
        Assert.Equal("FC-2", Assert.Single(list.EnumerateArray()).GetProperty("serial").GetString());
    }

    [Fact]
    public async Task Errors_HaveClearMessagesAndDistinctExitCodes()
    {
        await InitWithManifest();
        await Run("device", "import", _temp.Combine("pki", "manifest.json"));

        var missing = await Run("device", "show", "NOPE");
        Assert.Equal(ExitCodes.NotFound, missing.Code);
        Assert.Contains("ZT-REG-001", missing.Err, StringComparison.Ordinal);

        var noReason = await Run("device", "suspend", "FC-1");
        Assert.Equal(ExitCodes.Usage, noReason.Code);

        await Run("device", "revoke", "FC-2", "--reason", "lost");
        var forbidden = await Run("device", "resume", "FC-2", "--reason", "found");
        Assert.Equal(ExitCodes.Refused, forbidden.Code);
        Assert.Contains("ZT-REG-002", forbidden.Err, StringComparison.Ordinal);

        var badState = await Run("device", "list", "--state", "lost");
        Assert.Equal(ExitCodes.Usage, badState.Code);

        var tooLong = await Run("cert", "issue", "FC-1", "--validity", "365.00:00:00");
        Assert.Equal(ExitCodes.Refused, tooLong.Code);
        Assert.Contains("ZT-PKI-004", tooLong.Err, StringComparison.Ordinal);

        await File.WriteAllTextAsync(_temp.Combine("bad.json"), "{ nope", TestContext.Current.CancellationToken);
        var bad = await Run("device", "import", _temp.Combine("bad.json"));
        Assert.Equal(ExitCodes.Refused, bad.Code);
        Assert.Contains("not valid JSON", bad.Err, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _temp.Dispose();
    }
}
