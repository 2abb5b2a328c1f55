using KtZeroTrust.Redis;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Redis.Tests;

public sealed class RedisAuthTests(PasswordRedisServerFixture server) : IClassFixture<PasswordRedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Password_ForTheDefaultUser_Authenticates()
    {
        await using var redis = await RedisClient.ConnectAsync(RedisOptions.Parse($"{server.Configuration},password={PasswordRedisServerFixture.DefaultPassword}"), Ct);
        Assert.True(await redis.PingAsync(Ct));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task AclUser_Authenticates_AndIsLimitedToItsKeys(int protocol)
    {
        await using var redis = await RedisClient.ConnectAsync(RedisOptions.Parse(
            $"{server.Configuration},user={PasswordRedisServerFixture.AclUser},password={PasswordRedisServerFixture.AclPassword},protocol={protocol}"), Ct);
        Assert.True(await redis.StringSetAsync("zt:acl-test", "ok", cancellationToken: Ct));
        var ex = await Assert.ThrowsAsync<RedisServerException>(() => redis.StringSetAsync("other:key", "no", cancellationToken: Ct));
        Assert.Equal("NOPERM", ex.ErrorCode);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task WrongPassword_FailsToConnect_WithTheServersText(int protocol)
    {
        var ex = await Assert.ThrowsAsync<RedisServerException>(() => RedisClient.ConnectAsync(
            RedisOptions.Parse($"{server.Configuration},user={PasswordRedisServerFixture.AclUser},password=wrong,protocol={protocol}"), Ct));
        Assert.Equal("WRONGPASS", ex.ErrorCode);
        Assert.Contains(server.Configuration, ex.Message, StringComparison.Ordinal);
        Assert.Contains("invalid username-password pair", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoPassword_FailsToConnect_WithNoAuth()
    {
        var ex = await Assert.ThrowsAsync<RedisServerException>(() => RedisClient.ConnectAsync(RedisOptions.Parse(server.Configuration), Ct));
        Assert.Equal("NOAUTH", ex.ErrorCode);

        // Without a client name the handshake sends nothing; then the first command meets the refusal.
        await using var bare = await RedisClient.ConnectAsync(RedisOptions.Parse(server.Configuration + ",name="), Ct);
        Assert.Equal("NOAUTH", (await Assert.ThrowsAsync<RedisServerException>(() => bare.PingAsync(Ct))).ErrorCode);
    }
}

public sealed class RedisTlsTests(TlsRedisServerFixture server) : IClassFixture<TlsRedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Tls_WithTheServersCa_RoundTripsCommandsAndPubSub()
    {
        var options = RedisOptions.Parse(server.Configuration);
        await using var redis = await RedisClient.ConnectAsync(options, Ct);
        await redis.StringSetAsync("tls:key", new byte[] { 1, 2, 3 }, cancellationToken: Ct);
        Assert.Equal(new byte[] { 1, 2, 3 }, await redis.StringGetAsync("tls:key", Ct));

        await using var subscriber = await RedisSubscriber.ConnectAsync(options, Ct);
        var got = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await subscriber.SubscribeAsync("tls:channel", m => got.TrySetResult(System.Text.Encoding.UTF8.GetString(m.Payload)), Ct);
        await redis.PublishAsync("tls:channel", "over tls", Ct);
        Assert.Equal("over tls", await got.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct));
    }

    [Fact]
    public async Task Tls_WithAnotherCa_IsRefusedWithAClearReason()
    {
        using var dir = new TempDirectory();
        var otherCa = Path.Combine(dir.Path, "other-ca.pem");
        File.WriteAllText(otherCa, TestCertificates.CreateCa("CN=Other CA").Certificate.ExportCertificatePem());
        var options = RedisOptions.Parse($"{server.Host}:{server.Port},ssl=true,sslHost=localhost,sslCaFile={otherCa}");
        var ex = await Assert.ThrowsAsync<RedisConnectionException>(() => RedisClient.ConnectAsync(options, Ct));
        Assert.Contains("TLS handshake failed", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"{server.Host}:{server.Port}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PlainTextToATlsPort_DoesNotHang()
    {
        var options = RedisOptions.Parse($"{server.Host}:{server.Port},connectTimeout=2000,commandTimeout=500");
        // Redis drops a client that does not start TLS; either way the caller gets an error, never a hang.
        var attempt = Task.Run(async () =>
        {
            await using var redis = await RedisClient.ConnectAsync(options, Ct);
            await redis.PingAsync(Ct);
        }, Ct);
        await Assert.ThrowsAnyAsync<RedisException>(() => attempt.WaitAsync(TimeSpan.FromSeconds(20), Ct));
    }
}
