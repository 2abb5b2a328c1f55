using KtZeroTrust.Gateway.Identity;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Identity.Web;

namespace KtZeroTrust.Gateway.EntraId;

public static class EntraIdServiceCollectionExtensions
{
    /// <summary>
    /// The user listener's token scheme on Microsoft Entra ID through Microsoft.Identity.Web: the authority is
    /// <c>{Instance}{TenantId}/v2.0</c>, the issuer must be that tenant's (a token Microsoft signed for another tenant is
    /// refused), the signing key must belong to the issuer, the audience is the client id, <c>api://{ClientId}</c> or
    /// the configured one, and a token needs <c>scp</c> or <c>roles</c>. The product's own rules (algorithms, skew,
    /// claim names, key refresh) apply on top.
    /// </summary>
    public static IServiceCollection AddEntraIdUserTokens(this IServiceCollection services, UserGatewayOptions users)
    {
        ArgumentNullException.ThrowIfNull(users);
        var entra = users.EntraId;
        services.AddAuthentication().AddMicrosoftIdentityWebApi(
            jwt => UserTokenValidation.Configure(jwt, users),
            identity =>
            {
                identity.Instance = entra.Instance;
                identity.TenantId = entra.TenantId;
                identity.ClientId = entra.ClientId;
                identity.AllowWebApiToBeAuthorizedByACL = false; // scp or roles required
                if (entra.Audience is { Length: > 0 } audience)
                {
                    identity.TokenValidationParameters.ValidAudience = audience;
                }
            },
            UserAuthenticator.Scheme);

        if (users.IdentityProviderCaFile is { Length: > 0 } caFile)
        {
            // Identity.Web's issuer validator reads the tenant's metadata with its own HTTP client: same trust.
            const string client = "ktzt-entra-metadata";
            services.AddHttpClient(client).ConfigurePrimaryHttpMessageHandler(() => UserTokenValidation.TrustingOnly(caFile));
            services.Configure<AadIssuerValidatorOptions>(o => o.HttpClientName = client);
        }

        return services;
    }
}
