using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using KtZeroTrust.Server.Configuration;
using KtZeroTrust.Server.Pki;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace KtZeroTrust.Server.Tests;

/// <summary>What a new operator's mistakes in configuration lead to: a refused change or a one-line refused start.</summary>
public sealed class ConfigurationTests
{
    [Fact]
    public async Task ASettingsFileThatStopsParsing_IsARefusedChange_AndAnotherFilesReloadKeepsItsLastGoodContent()
    {
        using var temp = new TempDirectory("config-reload");
        var main = temp.Combine("appsettings.json");
        var other = temp.Combine("appsettings.Other.json");
        await File.WriteAllTextAsync(main, """{ "ZeroTrust": { "Policies": { "payments": { "Roles": [ "payments" ] } } } }""", TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(other, """{ "Logging": { "LogLevel": { "Default": "Warning" } } }""", TestContext.Current.CancellationToken);
        using var configuration = new ConfigurationManager();
        configuration.SetBasePath(temp.Path);
        configuration.AddJsonFile("appsettings.json", optional: false, reloadOnChange: true);
        configuration.AddJsonFile("appsettings.Other.json", optional: false, reloadOnChange: true);
        var errors = new ConfigurationReloadErrors();
        var reported = new List<string>();
        errors.LogTo(d => { lock (reported) { reported.Add(d); } });
        SafeJsonConfiguration.KeepLastGood(configuration, errors);

        await File.WriteAllTextAsync(main, "{ \"ZeroTrust\": { \"Policies\": { \"payments\": { \"Roles\": [ \"payments\" ] ,,, } } }", TestContext.Current.CancellationToken);
        await Eventually.Until(() => { lock (reported) { return reported.Count > 0; } }, "the refused reload to be reported");
        await File.WriteAllTextAsync(other, """{ "Logging": { "LogLevel": { "Default": "Information" } } }""", TestContext.Current.CancellationToken);
        await Eventually.Until(() => configuration["Logging:LogLevel:Default"] == "Information", "the other file's reload");

        Assert.Equal("payments", configuration["ZeroTrust:Policies:payments:Roles:0"]); // still served
        lock (reported)
        {
            Assert.Contains("appsettings.json, line 1", reported[0], StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AConfigurationDirectory_IsRead_ReloadedOnChange_AndAMissingOrBrokenOneStopsTheStart()
    {
        using var temp = new TempDirectory();
        var directory = temp.Combine("conf.d");
        Directory.CreateDirectory(directory);
        var policies = Path.Combine(directory, "policies.json");
        await File.WriteAllTextAsync(policies, """{ "ZeroTrust": { "Policies": { "payments": { "Roles": [ "payments" ] } } } }""", TestContext.Current.CancellationToken);
        string[] Args(string dir) => [.. ServerFixture.Arguments(temp.Combine("pki"), temp.Combine("data"), FreePorts.Next(5), "Development"), $"--ZeroTrust:ConfigurationDirectory={dir}"];

        await using (var app = ZeroTrustServer.Build(Args(directory)))
        {
            var configuration = app.Services.GetRequiredService<IConfiguration>();
            Assert.Equal("payments", configuration["ZeroTrust:Policies:payments:Roles:0"]);

            // A ConfigMap update rewrites the file: the new content is served (the policy store reloads from it).
            await File.WriteAllTextAsync(policies, """{ "ZeroTrust": { "Policies": { "payments": { "Roles": [ "payments-v2" ] } } } }""", TestContext.Current.CancellationToken);
            await Eventually.Until(() => configuration["ZeroTrust:Policies:payments:Roles:0"] == "payments-v2", "the changed file to be read");
        }

        Assert.Equal("ZT-START-017", Assert.Throws<StartupException>(() => ZeroTrustServer.Build(Args(temp.Combine("not-mounted")))).Code);
        await File.WriteAllTextAsync(policies, "{ \"ZeroTrust\": ,, }", TestContext.Current.CancellationToken);
        var broken = Assert.Throws<StartupException>(() => ZeroTrustServer.Build(Args(directory)));
        Assert.Equal("ZT-START-010", broken.Code);
        Assert.Contains("policies.json", broken.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheShippedSettingsAndTheProductionExample_UseOnlySettingsThatAreRead()
    {
        var root = RepositoryPaths.Root;
        var configuration = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(root, "src", "KtZeroTrust.Server", "appsettings.json"))
            .AddJsonFile(Path.Combine(root, "deploy", "appsettings.Production.example.json"))
            .Build();

        ConfigurationKeyCheck.Check(configuration); // throws ZT-START-012 on a setting nothing reads
    }

    [Fact]
    public void Start_WithASettingNothingReads_IsRefused_NamingTheSourceAndTheNearestName()
    {
        using var temp = new TempDirectory();
        var args = ServerFixture.Arguments(temp.Combine("pki"), temp.Combine("data"), FreePorts.Next(5), "Development")
            .Concat(["--ZeroTrust:AllowList:MaxStalenes=00:01:00"]).ToArray();

        var ex = Assert.Throws<StartupException>(() => ZeroTrustServer.Build(args));

        Assert.Equal("ZT-START-012", ex.Code);
        Assert.Contains("'ZeroTrust:AllowList:MaxStalenes'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("the command line", ex.Message, StringComparison.Ordinal);
        Assert.Contains("did you mean 'ZeroTrust:AllowList:MaxStaleness'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Start_WithASettingsFileThatDoesNotParse_IsRefusedWithFileAndLine()
    {
        using var temp = new TempDirectory();
        var environment = "Broken" + Guid.NewGuid().ToString("N")[..8];
        var file = Path.Combine(AppContext.BaseDirectory, $"appsettings.{environment}.json");
        File.WriteAllText(file, "{\n  \"ZeroTrust\": {\n    \"Node\": \"a\",,\n  }\n}\n");
        try
        {
            var args = ServerFixture.Arguments(temp.Combine("pki"), temp.Combine("data"), FreePorts.Next(5), environment);

            var ex = Assert.Throws<StartupException>(() => ZeroTrustServer.Build(args));

            Assert.Equal("ZT-START-010", ex.Code);
            Assert.Contains($"appsettings.{environment}.json, line 3", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Start_OnAPortInUse_IsOneLineWithItsId_NoStackTrace_AndANonZeroExit()
    {
        using var temp = new TempDirectory();
        using var occupied = new TcpListener(IPAddress.Loopback, 0);
        occupied.Start();
        var ports = FreePorts.Next(5);
        ports[1] = ((IPEndPoint)occupied.LocalEndpoint).Port; // the enrollment listener's port is taken
        var dll = RepositoryPaths.ServerDll;
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = temp.Path };
        info.ArgumentList.Add(dll);
        foreach (var arg in ServerFixture.Arguments(temp.Combine("pki"), temp.Combine("data"), ports, "Development"))
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = await process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);

        Assert.NotEqual(0, process.ExitCode);
        Assert.Contains($"ZT-START-011: port {ports[1]} is already in use", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr + await stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnreachableRegistryDatabase_StopsTheStart_WithOneLine()
    {
        using var temp = new TempDirectory();
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = temp.Path };
        info.ArgumentList.Add(RepositoryPaths.ServerDll);
        foreach (var arg in ServerFixture.Arguments(temp.Combine("pki"), temp.Combine("data"), FreePorts.Next(5), "Development"))
        {
            info.ArgumentList.Add(arg);
        }

        // Nobody listens there: the schema step (now in PrepareAsync, not in a DI factory) fails before anything is served.
        info.ArgumentList.Add($"--ZeroTrust:Registry:PostgreSql=Host=127.0.0.1;Port={FreePorts.Next()};Username=zt;Password=x;Database=zt;Timeout=3");
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = await process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);

        Assert.NotEqual(0, process.ExitCode);
        Assert.Contains("ZT-START-016: the registry database cannot be reached or prepared", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr + await stdout, StringComparison.Ordinal);
    }
}
