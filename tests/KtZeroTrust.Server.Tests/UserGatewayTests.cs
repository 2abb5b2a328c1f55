using System.Net;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using KtZeroTrust.Tests.Common;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace KtZeroTrust.Server.Tests;

/// <summary>A server whose user listener trusts a real OIDC provider (oidc-provider on Node.js), with one route left without a policy.</summary>
public sealed class UserGatewayFixture : OidcServerFixture
{
    public const string Audience = "https://gateway.ktzerotrust.test";

    public UserGatewayFixture()
        : this(OidcProvider.Create(Audience))
    {
    }

    private UserGatewayFixture(OidcProvider provider)
        : base(provider,
        [
            $"--ZeroTrust:Users:Authority={provider.Issuer}", $"--ZeroTrust:Users:Audience={Audience}", "--ZeroTrust:Users:RequireHttpsMetadata=false",
            "--ZeroTrust:Users:KeyRefreshInterval=00:00:01", "--ZeroTrust:Users:MaxTokenAge=01:00:00",
            "--ZeroTrust:Policies:network-management:RateLimitPerMinute=3",
            "--ReverseProxy:Routes:unguarded:ClusterId=payments", "--ReverseProxy:Routes:unguarded:Match:Path=/apps/unguarded/{**rest}",
            "--ReverseProxy:Routes:unguarded:Metadata:ZeroTrust.Listener=User",
            "--ReverseProxy:Routes:femto-lte:ClusterId=femto-management", "--ReverseProxy:Routes:femto-lte:Match:Path=/femto-lte/{**rest}",
            "--ReverseProxy:Routes:femto-lte:Metadata:ZeroTrust.Listener=Device", "--ZeroTrust:Policies:femto-lte:Models:0=KTF-HNB-LTE",
            "--ReverseProxy:Routes:femto-open:ClusterId=femto-management", "--ReverseProxy:Routes:femto-open:Match:Path=/femto-open/{**rest}",
            "--ReverseProxy:Routes:femto-open:Metadata:ZeroTrust.Listener=Device",
        ])
    {
    }

    public Uri UserUri(string path) => new($"https://127.0.0.1:{UserPort}{path}");

    public HttpClient UserClient(System.Security.Cryptography.X509Certificates.X509Certificate2? deviceCertificate = null)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => c is System.Security.Cryptography.X509Certificates.X509Certificate2 s && KtZeroTrust.Pki.Certificates.TrustPolicies.ChainsTo(s, TlsRoot) },
        };
        if (deviceCertificate is not null)
        {
            handler.SslOptions.ClientCertificates = [deviceCertificate];
        }

        return new HttpClient(handler);
    }
}

/// <summary>Attacks 12 and 13 of the threat model against the user listener; every refusal with its reason, in the response and the decision log.</summary>
public sealed class UserGatewayTests(UserGatewayFixture server) : IClassFixture<UserGatewayFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(HttpStatusCode Status, string? Reason, string? DecisionId, JsonElement Body)> SendAsync(string path, string? token, HttpMethod? method = null, HttpClient? client = null, Action<HttpRequestMessage>? configure = null)
    {
        using var owned = client is null ? server.UserClient() : null;
        using var request = new HttpRequestMessage(method ?? HttpMethod.Get, server.UserUri(path));
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        configure?.Invoke(request);
        using var response = await (client ?? owned!).SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        var body = text.Length > 0 && text[0] == '{' ? JsonDocument.Parse(text).RootElement.Clone() : default;
        string? Field(string name) => body.ValueKind == JsonValueKind.Object && body.TryGetProperty(name, out var v) ? v.GetString() : null;
        return (response.StatusCode, Field("reasonCode"), Field("decisionId"), body);
    }

    private string Forge(Action<SecurityTokenDescriptor> change, ECDsa? key = null, string? keyId = null)
    {
        var now = DateTime.UtcNow;
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = server.Provider.Issuer,
            Audience = UserGatewayFixture.Audience,
            Subject = new ClaimsIdentity([new Claim("sub", "alice")]),
            Claims = new Dictionary<string, object> { ["roles"] = new[] { "payments" }, ["amr"] = new[] { "pwd", "otp" } },
            IssuedAt = now,
            NotBefore = now.AddSeconds(-5),
            Expires = now.AddMinutes(5),
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key ?? server.Provider.SigningKey) { KeyId = keyId ?? server.Provider.KeyId }, SecurityAlgorithms.EcdsaSha256),
        };
        change(descriptor);
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
    }

    private static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [Fact]
    public async Task UserWithAProviderToken_ReachesTheAllowedRoute_AndTheUpstreamVerifiesTheGatewayAssertion()
    {
        var token = await server.Provider.TokenAsync("alice");
        var (status, _, decisionId, body) = await SendAsync("/apps/payments/ledger", token, configure: r =>
        {
            r.Headers.Add("X-ZT-User", "mallory"); // spoofed identity headers: stripped, replaced by the gateway's
            r.Headers.Add("X-ZT-Roles", "everything");
            r.Headers.Add("X-Forwarded-Client-Cert", "Hash=forged");
        });
        Assert.Equal(HttpStatusCode.OK, status);
        var headers = body.GetProperty("identityHeaders");
        Assert.Equal("alice", headers.GetProperty("X-ZT-User").GetString());
        Assert.Equal("payments", headers.GetProperty("X-ZT-Roles").GetString());
        Assert.False(headers.TryGetProperty("X-Forwarded-Client-Cert", out _));

        // The upstream's side: fetch the gateway's JWKS, verify the assertion (signature, issuer, audience = its cluster, lifetime).
        using var client = server.UserClient();
        var jwks = new JsonWebKeySet(await client.GetStringAsync(server.UserUri("/.well-known/jwks.json"), Ct));
        var assertion = headers.GetProperty("X-ZT-Assertion").GetString();
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(assertion, new TokenValidationParameters
        {
            ValidIssuer = "urn:ktzerotrust:gateway",
            ValidAudience = "payments",
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        Assert.Equal(("alice", decisionId), ((string)result.Claims["sub"], (string)result.Claims["jti"]));
        var decision = await server.DecisionAsync(d => d.Text("id") == decisionId, "the allow decision");
        Assert.Equal(("user", "allow", "payments-backoffice"), (decision.Text("listener"), decision.Text("outcome"), decision.Text("route")));
        Assert.Equal(16, decision.Text("policyVersion")!.Length);
    }

    [Fact]
    public async Task SecurityGrid_EveryRowIsRefusedWithItsReason_InTheResponseAndTheDecisionLog()
    {
        using var attacker = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var real = await server.Provider.TokenAsync("alice");
        var parts = real.Split('.');
        var payload = JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(parts[1])).RootElement;
        var tamperedPayload = B64(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Dictionary<string, object?>(payload.EnumerateObject().Select(p => new KeyValuePair<string, object?>(p.Name, p.Value)))
        {
            ["roles"] = new[] { "payments", "noc", "subscriber-support" },
        })));
        var q = server.Provider.SigningKey.ExportParameters(false);
        var hmacKey = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { kty = "EC", crv = "P-256", x = B64(q.Q.X!), y = B64(q.Q.Y!) }));
        var hs256 = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = server.Provider.Issuer, Audience = UserGatewayFixture.Audience, Subject = new ClaimsIdentity([new Claim("sub", "alice")]),
            Claims = new Dictionary<string, object> { ["roles"] = new[] { "payments" }, ["amr"] = new[] { "otp" } },
            Expires = DateTime.UtcNow.AddMinutes(5),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(hmacKey) { KeyId = server.Provider.KeyId }, SecurityAlgorithms.HmacSha256),
        });
        var none = $"{B64(Encoding.UTF8.GetBytes("{\"alg\":\"none\",\"typ\":\"JWT\"}"))}.{parts[1]}.";

        var grid = new (string Row, string Path, string? Token, HttpStatusCode Status, string Reason)[]
        {
            ("no token", "/apps/payments/x", null, HttpStatusCode.Unauthorized, "token_missing"),
            ("garbage", "/apps/payments/x", "not-a-jwt", HttpStatusCode.Unauthorized, "token_malformed"),
            ("expired", "/apps/payments/x", Forge(d => { d.IssuedAt = DateTime.UtcNow.AddHours(-2); d.NotBefore = DateTime.UtcNow.AddHours(-2); d.Expires = DateTime.UtcNow.AddHours(-1); }), HttpStatusCode.Unauthorized, "token_expired"),
            ("not yet valid", "/apps/payments/x", Forge(d => { d.NotBefore = DateTime.UtcNow.AddMinutes(10); d.Expires = DateTime.UtcNow.AddMinutes(20); }), HttpStatusCode.Unauthorized, "token_not_yet_valid"),
            ("issued in the future", "/apps/payments/x", Forge(d => { d.IssuedAt = DateTime.UtcNow.AddHours(1); d.Expires = DateTime.UtcNow.AddHours(2); }), HttpStatusCode.Unauthorized, "token_issued_in_future"),
            ("older than the maximum token age", "/apps/payments/x", Forge(d => { d.IssuedAt = DateTime.UtcNow.AddHours(-3); d.NotBefore = DateTime.UtcNow.AddHours(-3); d.Expires = DateTime.UtcNow.AddHours(1); }), HttpStatusCode.Unauthorized, "token_too_old"),
            ("no iat while a maximum age is set", "/apps/payments/x", Forge(d => d.IssuedAt = null), HttpStatusCode.Unauthorized, "token_too_old"),
            ("wrong issuer", "/apps/payments/x", Forge(d => d.Issuer = "https://evil.example"), HttpStatusCode.Unauthorized, "token_issuer_invalid"),
            ("wrong audience", "/apps/payments/x", Forge(d => d.Audience = "https://another-app.example"), HttpStatusCode.Unauthorized, "token_audience_invalid"),
            ("unknown key id", "/apps/payments/x", Forge(_ => { }, attacker, "attacker-key"), HttpStatusCode.Unauthorized, "token_key_unknown"),
            ("tampered payload", "/apps/payments/x", $"{parts[0]}.{tamperedPayload}.{parts[2]}", HttpStatusCode.Unauthorized, "token_signature_invalid"),
            ("alg none", "/apps/payments/x", none, HttpStatusCode.Unauthorized, "token_algorithm_not_allowed"),
            ("HS256 with the provider's public key", "/apps/payments/x", hs256, HttpStatusCode.Unauthorized, "token_algorithm_not_allowed"),
            ("token for another audience, from the provider", "/apps/payments/x", await server.Provider.TokenAsync("alice", "https://subscriber-api.example"), HttpStatusCode.Unauthorized, "token_audience_invalid"),
            ("missing MFA", "/apps/payments/x", await server.Provider.TokenAsync("bob"), HttpStatusCode.Forbidden, "mfa_required"),
            ("right user without the device certificate", "/apps/subscribers/42", await server.Provider.TokenAsync("carol"), HttpStatusCode.Forbidden, "device_certificate_required"),
            ("user the route does not name", "/apps/payments/x", await server.Provider.TokenAsync("dave"), HttpStatusCode.Forbidden, "subject_not_allowed"),
            ("route without a policy", "/apps/unguarded/x", real, HttpStatusCode.Forbidden, "policy_missing"),
            ("path: encoded dot segments", "/apps/network/%2e%2e/payments/x", await server.Provider.TokenAsync("dave"), HttpStatusCode.BadRequest, "path_rejected"),
            ("path: encoded slash", "/apps/network/..%2fpayments/x", await server.Provider.TokenAsync("dave"), HttpStatusCode.BadRequest, "path_rejected"),
            ("path: double encoding", "/apps/network/%252e%252e/payments/x", await server.Provider.TokenAsync("dave"), HttpStatusCode.BadRequest, "path_rejected"),
            ("path: mixed case lands on the stricter route", "/APPS/PAYMENTS/x", await server.Provider.TokenAsync("dave"), HttpStatusCode.Forbidden, "subject_not_allowed"),
            ("path: trailing dot", "/apps/payments./x", real, HttpStatusCode.NotFound, "route_not_allowed"),
        };

        var failures = new List<string>();
        foreach (var row in grid)
        {
            // Path rows go out byte for byte (curl --path-as-is): .NET's Uri would normalise them before sending.
            var (status, reason, decisionId, _) = row.Row.StartsWith("path", StringComparison.Ordinal) ? await CurlAsync(row.Path, row.Token) : await SendAsync(row.Path, row.Token);
            if (status != row.Status || reason != row.Reason)
            {
                failures.Add($"{row.Row}: expected {(int)row.Status} {row.Reason}, got {(int)status} {reason}");
                continue;
            }

            var logged = await server.DecisionAsync(d => d.Text("id") == decisionId, row.Row);
            if (logged.Text("reason") != row.Reason || logged.Text("outcome") != "deny")
            {
                failures.Add($"{row.Row}: decision log has {logged.Text("outcome")} {logged.Text("reason")}");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
        var delete = await SendAsync("/apps/payments/x", real, HttpMethod.Delete);
        Assert.Equal((HttpStatusCode.Forbidden, "method_not_allowed"), (delete.Status, delete.Reason));
    }

    private async Task<(HttpStatusCode Status, string? Reason, string? DecisionId, JsonElement Body)> CurlAsync(string path, string? token)
    {
        var info = new System.Diagnostics.ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-s", "--path-as-is", "--cacert", server.Layout.TlsRootCertificate, "-w", "\n%{http_code}", "-H", $"Authorization: Bearer {token}", $"https://127.0.0.1:{server.UserPort}{path}" })
        {
            info.ArgumentList.Add(arg);
        }

        using var curl = System.Diagnostics.Process.Start(info)!;
        var output = await curl.StandardOutput.ReadToEndAsync(Ct);
        await curl.WaitForExitAsync(Ct);
        var split = output.LastIndexOf('\n');
        var body = JsonDocument.Parse(output[..split]).RootElement.Clone();
        return ((HttpStatusCode)int.Parse(output[(split + 1)..], System.Globalization.CultureInfo.InvariantCulture), body.GetProperty("reasonCode").GetString(), body.GetProperty("decisionId").GetString(), body);
    }

    [Fact]
    public async Task TheTokenScheme_IsNotTheDefault_SoDeviceRequestsNeverRunIt()
    {
        var schemes = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Microsoft.AspNetCore.Authentication.IAuthenticationSchemeProvider>(server.Services);
        Assert.Null(await schemes.GetDefaultAuthenticateSchemeAsync());
        Assert.NotNull(await schemes.GetSchemeAsync(KtZeroTrust.Gateway.Identity.UserAuthenticator.Scheme));
    }

    [Fact]
    public async Task RequiredDeviceCertificate_FromAnActiveDevice_LetsTheRightUserIn()
    {
        using var client = server.UserClient(server.SampleCertificate("FC-0002"));
        var (status, reason, _, body) = await SendAsync("/apps/subscribers/42", await server.Provider.TokenAsync("carol"), client: client);
        Assert.True(status == HttpStatusCode.OK, reason);
        Assert.Equal("FC-0002", body.GetProperty("identityHeaders").GetProperty("X-ZT-Device-Id").GetString());
        var post = await SendAsync("/apps/subscribers/42", await server.Provider.TokenAsync("carol"), HttpMethod.Post, client);
        Assert.Equal((HttpStatusCode.Forbidden, "method_not_allowed"), (post.Status, post.Reason)); // GET only
    }

    [Fact]
    public async Task DeviceRoutes_AreDefaultDeny_AndTheirPolicyNamesModelsOrSites()
    {
        using var device = server.DeviceClient(server.SampleCertificate("FC-0003")); // a KTF-HNB-5G unit
        using (var allowed = await device.GetAsync(server.DeviceUri("/femto/status"), Ct))
        {
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        }

        foreach (var (path, reason) in new[] { ("/femto-lte/status", "subject_not_allowed"), ("/femto-open/status", "policy_missing") })
        {
            using var response = await device.GetAsync(server.DeviceUri(path), Ct);
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;
            Assert.Equal((HttpStatusCode.Forbidden, reason), (response.StatusCode, body.GetProperty("reasonCode").GetString()));
            var logged = await server.DecisionAsync(d => d.Text("id") == body.GetProperty("decisionId").GetString(), path);
            Assert.Equal(("FC-0003", reason), (logged.Text("subject"), logged.Text("reason")));
            Assert.NotNull(logged.Text("policyVersion"));
        }
    }

    [Fact]
    public async Task RateLimit_PerUserAndRoute_Answers429WithItsReason_AndRecordsIt()
    {
        var token = await server.Provider.TokenAsync("dave");
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await SendAsync("/apps/network/cells", token)).Status);
        }

        var (status, reason, decisionId, _) = await SendAsync("/apps/network/cells", token);
        Assert.Equal((HttpStatusCode.TooManyRequests, "rate_limited"), (status, reason));
        Assert.Equal("rate_limited", (await server.DecisionAsync(d => d.Text("id") == decisionId, "the 429 decision")).Text("reason"));
        Assert.Equal(HttpStatusCode.OK, (await SendAsync("/apps/payments/x", await server.Provider.TokenAsync("alice"))).Status); // another user and route: unaffected
    }

    [Fact]
    public async Task ProviderKeyRollover_NewTokensAreAccepted_AndTokensOfTheRemovedKeyAreRefused()
    {
        var old = await server.Provider.TokenAsync("alice");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync("/apps/payments/x", old)).Status);
        await server.Provider.RestartWithNewKeyAsync(); // the new key only: the old one is gone from the provider's JWKS
        var token = await server.Provider.TokenAsync("alice"); // signed with a key id the gateway has not seen
        await Eventually.Until(async () => (await SendAsync("/apps/payments/x", token)).Status, s => s == HttpStatusCode.OK, "the new key to be fetched");

        // The refreshed key set lacks the old key: its tokens are refused, not validated against the previous set.
        var (status, reason, _, _) = await SendAsync("/apps/payments/x", old);
        Assert.Equal((HttpStatusCode.Unauthorized, "token_key_unknown"), (status, reason));
    }
}
