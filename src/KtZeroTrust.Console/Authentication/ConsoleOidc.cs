using KtZeroTrust.Core.Decisions;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.SocConsole.Auditing;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace KtZeroTrust.SocConsole.Authentication;

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
/// Console sign-in through ASP.NET Core's OpenID Connect handler: authorization code flow with PKCE, state and nonce
/// protected by Data Protection (a callback landing on another console node works once the key ring is shared), the ID
/// token validated against the provider's keys (issuer, audience, lifetime, nonce, asymmetric algorithms only). Once the
/// ID token is valid, the console role comes from the roles claim and the handler signs the user in to the console's
/// cookie session, as a local account's sign-in does.
/// </summary>
internal static class ConsoleOidc
{
    public const string Scheme = "zt-console-oidc";

    public const string CallbackPath = "/api/oidc/callback";

    public static void AddConsoleOidc(this IServiceCollection services, ConsoleOidcOptions console)
    {
        if (!console.Enabled)
        {
            return;
        }

        services.AddAuthentication().AddOpenIdConnect(Scheme, oidc =>
        {
            oidc.SignInScheme = ConsoleAuthentication.CookieScheme; // the handler signs in to the console's own cookie session
            oidc.Authority = console.Authority;
            oidc.ClientId = console.ClientId;
            oidc.ClientSecret = console.ClientSecret;
            oidc.RequireHttpsMetadata = console.RequireHttpsMetadata;
            oidc.ResponseType = OpenIdConnectResponseType.Code;
            oidc.UsePkce = true;
            oidc.CallbackPath = CallbackPath;
            oidc.MapInboundClaims = false; // claim names as the provider wrote them
            oidc.GetClaimsFromUserInfoEndpoint = false;
            oidc.SaveTokens = false;
            oidc.Scope.Clear();
            foreach (var scope in console.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                oidc.Scope.Add(scope);
            }

            oidc.TokenValidationParameters.NameClaimType = "preferred_username";
            oidc.TokenValidationParameters.RoleClaimType = console.RolesClaim;
            oidc.TokenValidationParameters.ValidAlgorithms = KtZeroTrust.Hosting.Tokens.TokenAlgorithms.Asymmetric;
            oidc.TokenValidationParameters.ClockSkew = TimeSpan.FromSeconds(30);
            oidc.Events = new OpenIdConnectEvents
            {
                OnTokenValidated = context =>
                {
                    if (Role(context.Principal!, console.RolesClaim) is null)
                    {
                        context.Fail($"{UserOf(context.Principal!)} has neither {ConsoleRoles.Admin} nor {ConsoleRoles.Analyst} in '{console.RolesClaim}'");
                    }

                    return Task.CompletedTask;
                },
                OnTicketReceived = context =>
                {
                    // The console's own principal (user and role), signed in to its cookie session like a local account.
                    var user = UserOf(context.Principal!);
                    var role = Role(context.Principal!, console.RolesClaim)!;
                    context.Principal = ConsoleAuthentication.Principal(user, role);
                    context.Properties!.IsPersistent = true;
                    context.ReturnUri = "/#/feed";
                    context.HttpContext.RequestServices.GetRequiredService<Audit>().Post(context.HttpContext, user, DecisionOutcome.Allow, ReasonCode.Allowed, "console:login", $"signed in with the identity provider as {role}");
                    return Task.CompletedTask;
                },
                OnRemoteFailure = context =>
                {
                    var message = context.Failure?.Message ?? "sign-in failed";
                    context.HttpContext.RequestServices.GetRequiredService<Audit>().Post(context.HttpContext, null, DecisionOutcome.Deny, ReasonCode.TokenSignatureInvalid, "console:login", $"identity provider sign-in refused: {message}");
                    context.Response.Redirect("/#/login?error=" + Uri.EscapeDataString(message));
                    context.HandleResponse();
                    return Task.CompletedTask;
                },
            };
        });
    }

    /// <summary>Sends the browser to the provider (state, nonce, PKCE challenge made and protected by the handler).</summary>
    public static IResult Begin() => Results.Challenge(new AuthenticationProperties { RedirectUri = "/#/feed" }, [Scheme]);

    /// <summary>The provider's answer (form post or query): handled by the OpenID Connect handler, on the console listener only.</summary>
    public static async Task<IResult> CompleteAsync(HttpContext context)
    {
        var handlers = context.RequestServices.GetRequiredService<IAuthenticationHandlerProvider>();
        return await handlers.GetHandlerAsync(context, Scheme) is IAuthenticationRequestHandler handler && await handler.HandleRequestAsync()
            ? Results.Empty
            : Results.NotFound();
    }

    /// <summary>Ends the console session and sends the browser to the provider's end-session endpoint.</summary>
    public static IResult SignOut() => Results.SignOut(new AuthenticationProperties { RedirectUri = "/" }, [Scheme]);

    private static string UserOf(System.Security.Claims.ClaimsPrincipal principal)
        => principal.FindFirst("preferred_username")?.Value ?? principal.FindFirst("sub")?.Value ?? "unknown";

    private static string? Role(System.Security.Claims.ClaimsPrincipal principal, string claim)
    {
        var roles = principal.FindAll(claim).Select(c => c.Value).ToHashSet(StringComparer.Ordinal);
        return roles.Contains(ConsoleRoles.Admin) ? ConsoleRoles.Admin : roles.Contains(ConsoleRoles.Analyst) ? ConsoleRoles.Analyst : null;
    }
}
