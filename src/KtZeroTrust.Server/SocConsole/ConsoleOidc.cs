using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace KtZeroTrust.Server.SocConsole;

/// <summary>Console sign-in with the operator's identity provider. Bound from <c>ZeroTrust:Console:Oidc</c>; empty Authority: local accounts only.</summary>
public sealed class ConsoleOidcOptions
{
    public const string SectionName = "ZeroTrust:Console:Oidc";

    public string? Authority { get; set; }

    public string? ClientId { get; set; }

    public string? ClientSecret { get; set; }

    public string Scopes { get; set; } = "openid profile roles";

    /// <summary>The claim listing the user's roles; <c>soc-admin</c> or <c>soc-analyst</c> must be among them.</summary>
    public string RolesClaim { get; set; } = "roles";

    public bool RequireHttpsMetadata { get; set; } = true;

    public bool Enabled => !string.IsNullOrEmpty(Authority) && !string.IsNullOrEmpty(ClientId);
}

/// <summary>
/// Authorization code flow with PKCE (S256), state and nonce, as a confidential client: the browser is sent to the
/// provider, comes back with a code, the server exchanges it and validates the ID token against the provider's keys
/// (issuer, audience = client id, lifetime, nonce). The console role comes from the roles claim.
/// </summary>
public sealed class ConsoleOidc(ConsoleOidcOptions options, TimeProvider timeProvider) : IDisposable
{
    private static readonly TimeSpan PendingLifetime = TimeSpan.FromMinutes(10);
    private readonly ConcurrentDictionary<string, Pending> _pending = new(StringComparer.Ordinal);
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(15) };
    private readonly ConfigurationManager<OpenIdConnectConfiguration>? _configuration = options.Enabled
        ? new ConfigurationManager<OpenIdConnectConfiguration>($"{options.Authority!.TrimEnd('/')}/.well-known/openid-configuration", new OpenIdConnectConfigurationRetriever(), new HttpDocumentRetriever { RequireHttps = options.RequireHttpsMetadata })
        : null;

    private sealed record Pending(string Verifier, string Nonce, string RedirectUri, DateTimeOffset ExpiresAt);

    public bool Enabled => options.Enabled;

    /// <summary>The provider's authorization URL for a new sign-in.</summary>
    public async Task<string> BeginAsync(string redirectUri, CancellationToken cancellationToken)
    {
        var configuration = await _configuration!.GetConfigurationAsync(cancellationToken);
        var now = timeProvider.GetUtcNow();
        foreach (var stale in _pending.Where(p => p.Value.ExpiresAt < now).Select(p => p.Key).ToList())
        {
            _pending.TryRemove(stale, out _);
        }

        var state = Random();
        var verifier = Random();
        var nonce = Random();
        _pending[state] = new Pending(verifier, nonce, redirectUri, now + PendingLifetime);
        var challenge = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var query = string.Join('&', new Dictionary<string, string>
        {
            ["response_type"] = "code", ["client_id"] = options.ClientId!, ["redirect_uri"] = redirectUri, ["scope"] = options.Scopes,
            ["state"] = state, ["nonce"] = nonce, ["code_challenge"] = challenge, ["code_challenge_method"] = "S256",
        }.Select(p => $"{p.Key}={Uri.EscapeDataString(p.Value)}"));
        return $"{configuration.AuthorizationEndpoint}?{query}";
    }

    /// <summary>Exchanges the code and validates the ID token; returns the user and console role, or throws <see cref="SecurityTokenException"/> saying why not.</summary>
    public async Task<(string User, string Role)> CompleteAsync(string? code, string? state, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(code) || string.IsNullOrEmpty(state) || !_pending.TryRemove(state, out var pending) || pending.ExpiresAt < timeProvider.GetUtcNow())
        {
            throw new SecurityTokenException("unknown or expired sign-in (state)");
        }

        var configuration = await _configuration!.GetConfigurationAsync(cancellationToken);
        using var request = new HttpRequestMessage(HttpMethod.Post, configuration.TokenEndpoint)
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "authorization_code", ["code"] = code, ["redirect_uri"] = pending.RedirectUri, ["code_verifier"] = pending.Verifier,
            }),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(options.ClientId!)}:{Uri.EscapeDataString(options.ClientSecret ?? "")}")));
        using var response = await _http.SendAsync(request, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new SecurityTokenException($"the provider refused the code: {body}");
        }

        var idToken = JsonDocument.Parse(body).RootElement.GetProperty("id_token").GetString();
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(idToken, new TokenValidationParameters
        {
            ValidIssuer = configuration.Issuer,
            ValidAudience = options.ClientId,
            IssuerSigningKeys = configuration.SigningKeys,
            ValidAlgorithms = KtZeroTrust.Gateway.Users.UserGateway.AllowedAlgorithms,
            ClockSkew = TimeSpan.FromSeconds(30),
        });
        if (!result.IsValid)
        {
            throw new SecurityTokenException($"ID token refused: {result.Exception?.Message}");
        }

        if (!result.Claims.TryGetValue("nonce", out var nonce) || (string)nonce != pending.Nonce)
        {
            throw new SecurityTokenException("ID token nonce does not match this sign-in");
        }

        var user = result.Claims.TryGetValue("preferred_username", out var name) ? (string)name : (string)result.Claims["sub"];
        var token = (JsonWebToken)result.SecurityToken;
        var roles = token.Claims.Where(c => c.Type == options.RolesClaim).Select(c => c.Value).ToHashSet(StringComparer.Ordinal);
        var role = roles.Contains(ConsoleRoles.Admin) ? ConsoleRoles.Admin : roles.Contains(ConsoleRoles.Analyst) ? ConsoleRoles.Analyst : null;
        return role is null ? throw new SecurityTokenException($"{user} has neither {ConsoleRoles.Admin} nor {ConsoleRoles.Analyst} in '{options.RolesClaim}'") : (user, role);
    }

    public void Dispose() => _http.Dispose();

    private static string Random() => Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
}
