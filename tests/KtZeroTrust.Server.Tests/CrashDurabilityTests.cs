using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using StackExchange.Redis;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Redis;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// The server as a real process, killed with SIGKILL under load while Redis is down, then started again: every decision a
/// client was answered with (its id is in the response) is in the local log and in the Redis Stream afterwards.
/// </summary>
public sealed class CrashDurabilityTests(PersistentRedisServerFixture redis) : IClassFixture<PersistentRedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ServerKilledWhileRedisIsDown_LosesNoAnsweredDecision_FromTheLogOrTheStream()
    {
        using var temp = new TempDirectory("crash");
        var pki = ServerProcess.NewPkiDirectory(temp);
        var ports = FreePorts.Next(5);
        var stream = "zt:decisions:crash-" + Guid.NewGuid().ToString("N")[..8];
        string[] args = [.. ServerFixture.Arguments(pki, temp.Combine("data"), ports, "Development"),
            $"--ZeroTrust:DecisionStream:Redis={redis.Configuration},connectTimeout=500,commandTimeout=1000", $"--ZeroTrust:DecisionStream:StreamKey={stream}",
            "--ZeroTrust:Detectors:Enabled=false"];

        var answered = new List<string>();
        using (var first = await ServerProcess.StartAsync(args, temp.Path, ports[0], pki))
        {
            using var client = first.DeviceClient();
            await SendAsync(client, ports[0], 50, answered);
            await redis.StopAsync(); // the stream's lane now holds decisions in memory only
            await SendAsync(client, ports[0], 300, answered);
            first.Kill(); // SIGKILL: no shutdown, no flush
        }

        await redis.StartAsync();
        using var second = await ServerProcess.StartAsync(args, temp.Path, ports[0], pki);
        await using var reader = new RedisConnection(redis.Configuration + ",commandTimeout=30000");

        var stillMissing = await Eventually.Until(async () => answered.Except((await DecisionStreamReading.DecisionIdsAsync(reader, stream, Ct))).Count(), missing => missing == 0,
            $"every one of the {answered.Count} answered decisions in the Redis Stream (value: how many are missing)", TimeSpan.FromSeconds(90));
        var missingFromStream = answered.Except((await DecisionStreamReading.DecisionIdsAsync(reader, stream, Ct))).ToList();
        var log = (await File.ReadAllLinesAsync(Path.Combine(temp.Combine("data"), "decisions.jsonl"), Ct))
            .Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()!).ToHashSet();
        Assert.Equal(0, stillMissing);
        Assert.Empty(missingFromStream);
        var missingFromLog = answered.Where(id => !log.Contains(id)).ToList();
        Assert.Empty(missingFromLog);
    }

    private static async Task SendAsync(HttpClient client, int port, int count, List<string> answered)
    {
        for (var i = 0; i < count; i++)
        {
            using var response = await client.GetAsync(new Uri($"https://127.0.0.1:{port}/femto/status"), Ct);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
            answered.Add(body.GetProperty("decisionId").GetString()!);
        }
    }
}
