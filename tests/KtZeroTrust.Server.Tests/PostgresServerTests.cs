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
        var server = new ServerFixture(null, null, [$"--ZeroTrust:Registry:PostgreSql={postgres.ConnectionString(database)}"]);
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
}
