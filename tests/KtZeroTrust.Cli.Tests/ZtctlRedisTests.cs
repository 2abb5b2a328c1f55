using System.Text.Json;
using StackExchange.Redis;
using KtZeroTrust.Cli.Commands;
using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Redis;
using KtZeroTrust.Registry.Redis;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Cli.Tests;

/// <summary><c>ztctl --redis</c>: every registry change is written through to Redis and pushed to the gateways.</summary>
public sealed class ZtctlRedisTests(RedisServerFixture server) : IClassFixture<RedisServerFixture>, IDisposable
{
    private readonly TempDirectory _temp = new("ztctl-redis");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var all = args.Concat(["--data-dir", _temp.Combine("data"), "--pki-dir", _temp.Combine("pki")]).ToArray();
        var code = await Ztctl.RunAsync(all, output, error, Ct);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Suspend_WithRedis_IsPushedToSubscribers_AndStoredForLookups()
    {
        Directory.CreateDirectory(_temp.Combine("pki"));
        await File.WriteAllTextAsync(_temp.Combine("pki", "manifest.json"), """{"devices":[{"serial":"FC-1","model":"M","idevidCertificate":"idevid/FC-1.pem"}]}""", Ct);
        Assert.Equal(0, (await Run("pki", "init")).Code);
        Assert.Equal(0, (await Run("device", "import", _temp.Combine("pki", "manifest.json"), "--redis", server.Configuration)).Code);
        var issued = JsonDocument.Parse((await Run("cert", "issue", "FC-1", "--json", "--redis", server.Configuration)).Out).RootElement;
        var hash = CertificateHash.Of(Pki.Certificates.PemFiles.ReadCertificate(issued.GetProperty("certificate").GetString()!));

        await using var subscriber = new RedisConnection(server.Configuration);
        var pushed = new TaskCompletionSource<AllowListEntry>(TaskCreationOptions.RunContinuationsAsynchronously);
        await (await subscriber.ConnectAsync()).GetSubscriber().SubscribeAsync(RedisChannel.Literal(RedisAllowListStore.ChannelName()), (_, m) => pushed.TrySetResult(AllowListEntryCodec.DecodeBatch((byte[])m!)[0]));

        var suspend = await Run("device", "suspend", "FC-1", "--reason", "clone alert", "--redis", server.Configuration);
        Assert.Equal((0, ""), (suspend.Code, suspend.Err));

        var entry = await pushed.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal((hash, DeviceLifecycleState.Suspended), (entry.CertificateHash, entry.State));
        await using var redis = new RedisConnection(server.Configuration);
        Assert.Equal(DeviceLifecycleState.Suspended, (await new RedisAllowListStore(redis).GetAsync(hash, Ct))!.State);
    }

    [Fact]
    public async Task Suspend_WithRedisDown_CommitsAndWarns()
    {
        Directory.CreateDirectory(_temp.Combine("pki"));
        await File.WriteAllTextAsync(_temp.Combine("pki", "manifest.json"), """{"devices":[{"serial":"FC-9","model":"M","idevidCertificate":"idevid/FC-9.pem"}]}""", Ct);
        Assert.Equal(0, (await Run("pki", "init")).Code);
        Assert.Equal(0, (await Run("device", "import", _temp.Combine("pki", "manifest.json"))).Code);

        var down = $"127.0.0.1:{FreePorts.Next()},connectTimeout=300";
        var suspend = await Run("device", "suspend", "FC-9", "--reason", "maintenance", "--redis", down);
        Assert.Equal(0, suspend.Code);
        Assert.Contains("warning: the registry is updated, but pushing the change to Redis failed", suspend.Err, StringComparison.Ordinal);
        Assert.Contains("Suspended", (await Run("device", "show", "FC-9")).Out, StringComparison.Ordinal);

        var bad = await Run("device", "resume", "FC-9", "--reason", "back", "--redis", "127.0.0.1:1,colour=blue");
        Assert.Equal(ExitCodes.Usage, bad.Code);
        Assert.Contains("Keyword 'colour' is not supported", bad.Err, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _temp.Dispose();
    }
}
