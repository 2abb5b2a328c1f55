namespace KtZeroTrust.Gateway.Identity;

/// <summary>User authentication on the user listener. Bound from <c>ZeroTrust:Users</c>.</summary>
public sealed class UserGatewayOptions
{
    public const string SectionName = "ZeroTrust:Users";

    /// <summary>The OIDC provider's issuer URL (its discovery document is <c>{Authority}/.well-known/openid-configuration</c>). Empty: every user request is refused.</summary>
    public string? Authority { get; set; }

    /// <summary>The audience access tokens must carry for this gateway.</summary>
    public string? Audience { get; set; }

    /// <summary>Refuse discovery over plain HTTP. Default true; only a loopback test provider turns it off.</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>Allowed clock difference with the provider. Default 30 s.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Optional: refuse tokens issued (<c>iat</c>) longer ago than this, whatever their expiry says (<c>token_too_old</c>);
    /// a token without <c>iat</c> is then refused too. Empty: only the expiry limits a token's age.
    /// </summary>
    public TimeSpan? MaxTokenAge { get; set; }

    /// <summary>How soon the provider's keys are fetched again when a token names an unknown key (rollover). Default 1 minute.</summary>
    public TimeSpan KeyRefreshInterval { get; set; } = TimeSpan.FromMinutes(1);

    public string RolesClaim { get; set; } = "roles";

    public string GroupsClaim { get; set; } = "groups";

    /// <summary>Issuer of the gateway assertion sent to upstreams. Default <c>urn:ktzerotrust:gateway</c>.</summary>
    public string AssertionIssuer { get; set; } = "urn:ktzerotrust:gateway";

    /// <summary>Lifetime of the gateway assertion. Default 60 s.</summary>
    public TimeSpan AssertionLifetime { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>PEM file of the assertion signing key (ECDSA P-256); created on first start when missing.</summary>
    public string? AssertionKeyPath { get; set; }

    /// <summary>
    /// Optional PEM file of the CAs whose certificates the identity provider's discovery and key endpoints present (an
    /// on-premises provider with a private CA); when set, only these are trusted for them. Empty: the system store.
    /// </summary>
    public string? IdentityProviderCaFile { get; set; }

    /// <summary>
    /// Microsoft Entra ID instead of a generic provider (then <see cref="Authority"/> stays empty): tokens are validated by
    /// Microsoft.Identity.Web, with Entra's issuer and signing-key checks and the requirement of <c>scp</c> or <c>roles</c>.
    /// </summary>
    public EntraIdOptions EntraId { get; set; } = new();
}

/// <summary>The Entra ID application the user listener accepts tokens for. Bound from <c>ZeroTrust:Users:EntraId</c>.</summary>
public sealed class EntraIdOptions
{
    /// <summary>Entra's authority base. Default <c>https://login.microsoftonline.com/</c> (sovereign clouds have their own).</summary>
    public string Instance { get; set; } = "https://login.microsoftonline.com/";

    /// <summary>The tenant (directory) id whose tokens are accepted; tokens of any other tenant are refused.</summary>
    public string? TenantId { get; set; }

    /// <summary>The gateway's application (client) id.</summary>
    public string? ClientId { get; set; }

    /// <summary>The audience tokens carry, when it is not the client id or <c>api://{ClientId}</c> (an application id URI).</summary>
    public string? Audience { get; set; }

    public bool Enabled => !string.IsNullOrEmpty(TenantId) && !string.IsNullOrEmpty(ClientId);
}
