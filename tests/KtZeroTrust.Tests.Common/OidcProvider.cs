using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace KtZeroTrust.Tests.Common;

/// <summary>
/// A real OpenID Connect provider for the tests: panva's <c>oidc-provider</c> (tests/oidc, installed by test.sh with
/// <c>npm ci</c>) run by Node.js on a loopback port. It issues ES256 JWT access tokens by the client credentials grant;
/// the clients alice, bob, carol and dave stand for users (roles, groups and amr in tests/oidc/provider.mjs). The test
/// holds the signing key too, to forge the tokens an attacker would try.
/// </summary>
public sealed class OidcProvider : IAsyncDisposable
{
    private readonly TempDirectory _temp = new("oidc");
    private readonly HttpClient _http;
    private Process? _process;

    private OidcProvider(string audience, string? consoleRedirectUri, string? tenantId = null)
    {
        Audience = audience;
        ConsoleRedirectUri = consoleRedirectUri;
        TenantId = tenantId;
        Port = FreePorts.Next();
        if (tenantId is null)
        {
            _http = new HttpClient();
            return;
        }

        // Entra's shape is served over HTTPS, with a certificate from a CA of the test's own (CaFile).
        var ca = TestCertificates.CreateCa("CN=Test IdP TLS CA");
        File.WriteAllText(CaFile!, ca.Certificate.ExportCertificatePem());
        using var tls = ca.IssueWithNewKey(new System.Security.Cryptography.X509Certificates.X500DistinguishedName("CN=127.0.0.1"), Pki.Certificates.CertificateUsage.ServerAuth,
            DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), ipAddresses: [System.Net.IPAddress.Loopback]);
        TestCertificates.WritePem(tls, _temp.Path, "tls");
        _http = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = Pki.Certificates.TrustPolicies.ServerTrustedBy([ca.Certificate]) },
        });
    }

    /// <summary>Entra's shape only: the tenant id in the issuer and in every token's <c>tid</c>.</summary>
    public string? TenantId { get; }

    /// <summary>Entra's shape only: the PEM file of the CA that issued the provider's TLS certificate.</summary>
    public string? CaFile => TenantId is null ? null : _temp.Combine("tls-ca.pem");

    /// <summary>The base Entra composes authorities from (<c>Instance</c>): the issuer is <c>{Instance}{TenantId}/v2.0</c>.</summary>
    public string Instance => $"https://127.0.0.1:{Port}/";

    /// <summary>Where the console client "ktzt-console" may send people back to (authorization code flow); null: no such client.</summary>
    public string? ConsoleRedirectUri { get; }

    public string Audience { get; }

    public int Port { get; }

    public string Issuer => TenantId is null ? $"http://127.0.0.1:{Port}" : $"https://127.0.0.1:{Port}/{TenantId}/v2.0";

    /// <summary>The provider's current signing key (private), and its key id.</summary>
    public ECDsa SigningKey { get; private set; } = null!;

    public string KeyId { get; private set; } = null!;

    /// <summary>Picks the address (so a server can be configured with <see cref="Issuer"/>); <see cref="StartAsync"/> starts it.</summary>
    public static OidcProvider Create(string audience, string? consoleRedirectUri = null) => new(audience, consoleRedirectUri);

    /// <summary>
    /// A provider in Entra ID's shape: issuer <c>https://127.0.0.1:port/{tenant}/v2.0</c>, tokens with <c>tid</c>,
    /// <c>ver</c> 2.0 and <c>roles</c> or <c>scp</c>; <paramref name="clientId"/> is the gateway's application (the audience).
    /// </summary>
    public static OidcProvider CreateEntra(string clientId, string tenantId) => new(clientId, null, tenantId);

    public Task StartAsync() => RestartWithNewKeyAsync();

    /// <summary>Key rollover: the provider comes back on the same address signing with a new key.</summary>
    public async Task RestartWithNewKeyAsync()
    {
        Stop();
        SigningKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        KeyId = "k-" + Guid.NewGuid().ToString("N")[..8];
        var p = SigningKey.ExportParameters(includePrivateParameters: true);
        var keysFile = _temp.Combine(KeyId + ".json");
        await File.WriteAllTextAsync(keysFile, JsonSerializer.Serialize(new
        {
            keys = new[] { new { kty = "EC", crv = "P-256", x = B64(p.Q.X!), y = B64(p.Q.Y!), d = B64(p.D!), kid = KeyId, use = "sig", alg = "ES256" } },
        }));
        var script = Path.Combine(RepositoryPaths.Root, "tests", "oidc", "provider.mjs");
        if (!Directory.Exists(Path.Combine(Path.GetDirectoryName(script)!, "node_modules", "oidc-provider")))
        {
            throw new InvalidOperationException("tests/oidc/node_modules is missing: run ./test.sh (it runs npm ci --prefix tests/oidc).");
        }

        var info = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { script, Port.ToString(System.Globalization.CultureInfo.InvariantCulture), Audience, keysFile, ConsoleRedirectUri ?? "" }.Where(a => a.Length > 0))
        {
            info.ArgumentList.Add(arg);
        }

        if (TenantId is not null)
        {
            info.Environment["ENTRA_TENANT"] = TenantId;
            info.Environment["TLS_CERT"] = _temp.Combine("tls.pem");
            info.Environment["TLS_KEY"] = _temp.Combine("tls.key.pem");
        }

        _process = Process.Start(info) ?? throw new InvalidOperationException("node did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        await Eventually.Until(async () =>
        {
            using var response = await _http.GetAsync(new Uri($"{Issuer}/jwks"));
            return await response.Content.ReadAsStringAsync();
        }, jwks => jwks.Contains(KeyId, StringComparison.Ordinal), "the OIDC provider to serve its keys");
    }

    /// <summary>An access token for <paramref name="user"/> by the client credentials grant (<paramref name="resource"/> defaults to the gateway's audience).</summary>
    public async Task<string> TokenAsync(string user, string? resource = null, string scope = "apps:read")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"{Issuer}/token"))
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["resource"] = resource ?? (TenantId is null ? Audience : $"api://{Audience}"), ["scope"] = scope }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes($"{user}:{user}-secret")));
        using var response = await _http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"token request for {user} failed: {body}");
        }

        return JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;
    }

    public async ValueTask DisposeAsync()
    {
        Stop();
        _http.Dispose();
        _temp.Dispose();
        await Task.CompletedTask;
    }

    private void Stop()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process?.Dispose();
        _process = null;
    }

    private static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

}
