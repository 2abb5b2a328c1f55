using System.Net;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Server.Tests;

/// <summary>The server on a real PostgreSQL registry: the schema is created at start (PrepareAsync), then the fleet is served.</summary>
public sealed class PostgresServerTests(PostgresServerFixture postgres) : IClassFixture<PostgresServerFixture>
{
    [Fact]
    public async Task Server_OnPostgreSql_CreatesTheSchemaAtStart_AndServesTheSampleFleet()
    {
        var database = await postgres.CreateDatabaseAsync();
        var server = new ServerFixture(null, null, [$"--ZeroTrust:Registry:PostgreSql={database}"]);
        await using (server)
        {
            await server.InitializeAsync();
            using var client = server.DeviceClient(server.SampleCertificate("FC-0001"));
            using var response = await client.GetAsync(server.DeviceUri("/femto/status"), TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var decision = await server.DecisionAsync(d => d.Text("subject") == "FC-0001" && d.Text("outcome") == "allow", "FC-0001's allowed request");
            Assert.Equal("device", decision.Text("listener"));
        }
    }

    [Fact]
    public async Task DecisionsGoToThePostgreSqlStore_AndTheConsoleReadsThemThere()
    {
        var database = await postgres.CreateDatabaseAsync();
        var server = new ServerFixture(null, null, [$"--ZeroTrust:Registry:PostgreSql={database}", $"--ZeroTrust:DecisionStore:PostgreSql={database}"]);
        await using (server)
        {
            await server.InitializeAsync();
            Assert.IsType<KtZeroTrust.Monitoring.Store.PostgresDecisionStore>(Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<KtZeroTrust.Monitoring.Store.IDecisionStore>(server.Services));
            using var client = server.DeviceClient(server.SampleCertificate("FC-0003"));
            (await client.GetAsync(server.DeviceUri("/femto/status"), TestContext.Current.CancellationToken)).EnsureSuccessStatusCode();

            await using var connection = new Npgsql.NpgsqlConnection(database);
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var count = new Npgsql.NpgsqlCommand("SELECT count(*) FROM zt_decisions WHERE subject = 'FC-0003' AND outcome = 'allow';", connection);
            await Eventually.Until(async () => (long)(await count.ExecuteScalarAsync(TestContext.Current.CancellationToken))!, n => n == 1, "FC-0003's decision in PostgreSQL");

            using var analyst = await server.SignedInConsoleAsync("pg-analyst", KtZeroTrust.SocConsole.Accounts.ConsoleRoles.Analyst);
            using var answer = await analyst.GetAsync(server.ConsoleUri("/api/decisions?device=FC-0003"), TestContext.Current.CancellationToken);
            var body = await answer.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            Assert.True(answer.IsSuccessStatusCode, $"{(int)answer.StatusCode}: {body}");
            var found = System.Text.Json.JsonDocument.Parse(body).RootElement.EnumerateArray().ToList();
            Assert.All(found, d => Assert.Equal("FC-0003", d.Text("subject")));
            // The access decision, read from PostgreSQL (a detector may add an alert about the unit beside it).
            var access = Assert.Single(found, d => d.Text("kind") == "access");
            Assert.Equal(("allow", "/femto/status"), (access.Text("outcome"), access.Text("path")));
        }
    }
}
