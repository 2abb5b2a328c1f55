using System.Net;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text.Json;
using KtZeroTrust.Tests.Common;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// A server whose user listener is on Entra ID (Microsoft.Identity.Web), facing the test provider in Entra's shape:
/// issuer https://127.0.0.1:port/{tenant}/v2.0 over TLS from a private CA, tokens with tid, ver 2.0, roles or scp.
/// </summary>
public sealed class EntraIdUserFixture : OidcServerFixture
{
    public const string TenantId = "7d1b2c3e-4f50-4a6b-8c9d-0e1f2a3b4c5d";
    public const string ClientId = "0c5b3f5e-2a8d-4e1f-9b7a-6d4c3b2a1f0e";

    public EntraIdUserFixture()
        : this(OidcProvider.CreateEntra(ClientId, TenantId))
    {
    }

    private EntraIdUserFixture(OidcProvider provider)
        : base(provider,
        [
            $"--ZeroTrust:Users:EntraId:Instance={provider.Instance}", $"--ZeroTrust:Users:EntraId:TenantId={TenantId}",
            $"--ZeroTrust:Users:EntraId:ClientId={ClientId}", $"--ZeroTrust:Users:IdentityProviderCaFile={provider.CaFile}",
            "--ZeroTrust:Users:KeyRefreshInterval=00:00:01",
        ])
    {
    }

    public Uri UserUri(string path) => new($"https://127.0.0.1:{UserPort}{path}");

    public HttpClient UserClient() => new(new SocketsHttpHandler
    {
        SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => c is System.Security.Cryptography.X509Certificates.X509Certificate2 s && KtZeroTrust.Pki.Certificates.TrustPolicies.ChainsTo(s, TlsRoot) },
    });
}

public sealed class EntraIdUserTests(EntraIdUserFixture server) : IClassFixture<EntraIdUserFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(HttpStatusCode Status, string? Reason)> SendAsync(string token)
    {
        using var client = server.UserClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, server.UserUri("/apps/payments/ledger"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await client.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        var reason = text.StartsWith('{') && JsonDocument.Parse(text).RootElement.TryGetProperty("reasonCode", out var r) ? r.GetString() : null;
        return (response.StatusCode, reason);
    }

    /// <summary>A token as Entra would sign it (the provider's own key), with the claims the test changes.</summary>
    private string Forge(Action<SecurityTokenDescriptor> change)
    {
        var now = DateTime.UtcNow;
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = server.Provider.Issuer,
            Audience = EntraIdUserFixture.ClientId,
            Subject = new ClaimsIdentity([new Claim("sub", "alice")]),
            Claims = new Dictionary<string, object> { ["roles"] = new[] { "payments" }, ["tid"] = EntraIdUserFixture.TenantId, ["ver"] = "2.0", ["azp"] = "alice" },
            IssuedAt = now,
            NotBefore = now.AddSeconds(-5),
            Expires = now.AddMinutes(5),
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(server.Provider.SigningKey) { KeyId = server.Provider.KeyId }, SecurityAlgorithms.EcdsaSha256),
        };
        change(descriptor);
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
    }

    [Fact]
    public async Task TokenOfTheTenant_WithAnAppRole_IsAllowed_AndScpAloneAuthenticates()
    {
        Assert.Equal((HttpStatusCode.OK, null), await SendAsync(await server.Provider.TokenAsync("alice")));
        // Delegated scopes but no role the route's policy asks for: authenticated, then refused by the policy.
        Assert.Equal((HttpStatusCode.Forbidden, "subject_not_allowed"), await SendAsync(await server.Provider.TokenAsync("scoped")));
        var decision = await server.DecisionAsync(d => d.Text("listener") == "user" && d.Text("outcome") == "allow", "the allowed Entra user");
        Assert.Equal("alice", decision.Text("subject"));
    }

    [Fact]
    public async Task TokensOfAnotherTenantAudienceOrIssuer_OrWithoutPermissions_AreRefusedWithTheirReasons()
    {
        const string otherTenant = "11111111-2222-3333-4444-555555555555";
        var cases = new (string What, string Token, string Reason)[]
        {
            // Entra signs every tenant's tokens with the same keys: only the issuer and tid tell them apart.
            ("another tenant", Forge(d => { d.Issuer = $"{server.Provider.Instance}{otherTenant}/v2.0"; d.Claims["tid"] = otherTenant; }), "token_issuer_invalid"),
            ("another tenant's tid under this issuer", Forge(d => d.Claims["tid"] = otherTenant), "token_issuer_invalid"),
            ("another issuer", Forge(d => d.Issuer = "https://login.example/evil/v2.0"), "token_issuer_invalid"),
            ("another application", Forge(d => d.Audience = "9f9f9f9f-0000-4000-8000-000000000000"), "token_audience_invalid"),
            ("neither scp nor roles", await server.Provider.TokenAsync("bare"), "token_permissions_missing"),
            ("HMAC with the public key", Forge(d => d.SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(new byte[32]), SecurityAlgorithms.HmacSha256)), "token_algorithm_not_allowed"),
        };
        foreach (var (what, token, reason) in cases)
        {
            var (status, got) = await SendAsync(token);
            Assert.Equal((what, HttpStatusCode.Unauthorized, reason), (what, status, got));
        }
    }
}

/// <summary>Microsoft.Identity.Web, MSAL and Azure.Identity ship with the server; a node not configured for Entra ID never loads them.</summary>
public sealed class EntraIdFootprintTests
{
    [Fact]
    public async Task NodeWithoutEntraId_HasNoIdentityWebMsalOrAzureAssemblyLoaded()
    {
        using var temp = new TempDirectory("footprint");
        var pki = ServerProcess.NewPkiDirectory(temp);
        var ports = FreePorts.Next(5);
        using var server = await ServerProcess.StartAsync([.. ServerFixture.Arguments(pki, temp.Combine("data"), ports, "Development")], temp.Path, ports[0], pki);
        using (var client = server.DeviceClient())
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri($"https://127.0.0.1:{ports[0]}/femto/status"), TestContext.Current.CancellationToken)).StatusCode);
        }

        var mapped = (await File.ReadAllLinesAsync($"/proc/{server.Id}/maps", TestContext.Current.CancellationToken)).Select(l => Path.GetFileName(l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Last())).ToHashSet();
        Assert.Contains("KtZeroTrust.Gateway.dll", mapped); // the check sees managed assemblies
        Assert.DoesNotContain(mapped, f => f.StartsWith("Microsoft.Identity.", StringComparison.Ordinal) || f.StartsWith("Azure.", StringComparison.Ordinal) || f == "KtZeroTrust.Gateway.EntraId.dll");
    }
}
