using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.IdentityModel.Tokens;

namespace KtZeroTrust.Gateway.Identity;

/// <summary>
/// The token rules of the user listener, the same whichever library fetches the provider's keys (JwtBearer for a
/// generic provider, Microsoft.Identity.Web for Entra ID): issuer, audience, lifetime with a small skew, asymmetric
/// algorithms only, claim names as the provider wrote them, keys fetched again on an unknown key id.
/// </summary>
public static class UserTokenValidation
{
    public static void Configure(JwtBearerOptions jwt, UserGatewayOptions users)
    {
        ArgumentNullException.ThrowIfNull(jwt);
        ArgumentNullException.ThrowIfNull(users);
        jwt.RequireHttpsMetadata = users.RequireHttpsMetadata;
        jwt.MapInboundClaims = false; // claim names as the provider wrote them: sub, roles, amr, scope, scp
        jwt.RefreshOnIssuerKeyNotFound = true;
        jwt.RefreshInterval = users.KeyRefreshInterval;
        if (users.IdentityProviderCaFile is { Length: > 0 } caFile)
        {
            jwt.BackchannelHttpHandler = TrustingOnly(caFile);
        }

        var parameters = jwt.TokenValidationParameters;
        parameters.ValidateIssuer = true;
        parameters.ValidateAudience = true;
        parameters.ValidateLifetime = true;
        parameters.RequireExpirationTime = true;
        parameters.RequireSignedTokens = true;
        parameters.ClockSkew = users.ClockSkew;
        // Asymmetric only: "none" and HMAC (key confusion with the provider's public key) never validate.
        parameters.ValidAlgorithms = KtZeroTrust.Hosting.Tokens.TokenAlgorithms.Asymmetric; // the same list the gateway checks a token's header against
    }

    /// <summary>An HTTP handler for the provider's endpoints that trusts only the CAs in <paramref name="caFile"/>.</summary>
    public static HttpMessageHandler TrustingOnly(string caFile)
    {
        var roots = new X509Certificate2Collection();
        roots.ImportFromPemFile(caFile);
        return new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = KtZeroTrust.Pki.Certificates.TrustPolicies.ServerTrustedBy(roots) } };
    }
}
