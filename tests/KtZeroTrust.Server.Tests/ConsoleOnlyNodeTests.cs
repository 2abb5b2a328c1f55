using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.AllowList.Redis;
using KtZeroTrust.Gateway.Identity;
using KtZeroTrust.Redis;
using KtZeroTrust.Registry.Redis;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace KtZeroTrust.Server.Tests;

/// <summary>A node with the gateway role off runs none of the gateway's services, yet its registry writes still reach the fleet's allow list.</summary>
public sealed class ConsoleOnlyNodeTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ConsoleOnlyNode_RunsNoGatewayService_AndWritesRegistryChangesThroughToRedis()
    {
        using var temp = new TempDirectory();
        var args = ServerFixture.Arguments(temp.Combine("pki"), temp.Combine("data"), FreePorts.Next(5), "Development")
            .Concat(["--ZeroTrust:Roles:Gateway=false", "--ZeroTrust:Roles:Attestation=false", $"--ZeroTrust:AllowList:Redis={redis.Configuration}", "--ZeroTrust:AllowList:KeyPrefix=console-only:"])
            .ToArray();
        await using var app = ZeroTrustServer.Build(args);

        Assert.Null(app.Services.GetService<DeviceTlsHandshake>());
        Assert.Null(app.Services.GetService<AllowListCache>());
        Assert.Null(app.Services.GetService<GatewayRedis>());
        Assert.DoesNotContain(app.Services.GetServices<IHostedService>(), s => s.GetType().Assembly == typeof(DeviceTlsHandshake).Assembly);

        await app.StartAsync(Ct);
        try
        {
            // An administrator's write on this node (the console's): the certificate's entry is in Redis at once.
            var registry = app.Services.GetRequiredService<IDeviceRegistry>();
            await registry.ImportAsync([new ManifestDevice { Serial = "FC-9001", Model = "KTF-HNB-LTE" }], "test", Ct);
            var hash = CertificateHash.Of(Guid.NewGuid().ToByteArray());
            await registry.AddCertificateAsync(new DeviceCertificateRecord
            {
                Sha256 = hash.ToString(), DeviceSerial = "FC-9001", CertificateSerialNumber = "01", NotBefore = DateTimeOffset.UtcNow.AddMinutes(-1),
                NotAfter = DateTimeOffset.UtcNow.AddDays(1), IssuedAt = DateTimeOffset.UtcNow, PublicKeySha256 = CertificateHash.Of(Guid.NewGuid().ToByteArray()).ToString(),
            }, "test", Ct);

            await using var connection = new RedisConnection(redis.Configuration);
            var store = new RedisAllowListStore(connection, "console-only:");
            var entry = await store.GetAsync(hash, Ct);
            Assert.NotNull(entry);
            Assert.Equal("FC-9001", entry.DeviceSerial);
            Assert.Equal(await registry.GetVersionAsync(Ct), await store.GetSyncedVersionAsync(Ct));
        }
        finally
        {
            await app.StopAsync(Ct);
        }
    }
}
