using System.Security.Claims;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Hosting.Tokens;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace KtZeroTrust.Gateway.Identity;

/// <summary>What the user's token established: the user, or the reason (and HTTP status) it did not.</summary>
public readonly record struct UserAuthentication(ReasonCode Reason, int Status, string? Detail, UserSubject? User)
{
    public static UserAuthentication Refused(ReasonCode reason, int status, string? detail = null) => new(reason, status, detail, null);
}

/// <summary>
/// The user from the request's OIDC access token: validated by the standard JwtBearer handler (scheme
/// <see cref="Scheme"/>: discovery document, keys, issuer, audience, lifetime), with what it does not check done here:
/// the algorithm judged by name before any key, <c>iat</c> not in the future nor too old, Entra ID's tenant.
/// </summary>
public sealed class UserAuthenticator(TimeProvider timeProvider, IOptions<UserGatewayOptions> options)
{
    public const string Scheme = "zt-user";

    public async Task<UserAuthentication> AuthenticateAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var (reason, status, detail, user) = await AuthenticateCoreAsync(context);
        return new UserAuthentication(reason, status, detail, user);
    }

    private async Task<(ReasonCode, int, string?, UserSubject?)> AuthenticateCoreAsync(HttpContext context)
    {
        if (string.IsNullOrEmpty(options.Value.Authority) && !options.Value.EntraId.Enabled)
        {
            return (ReasonCode.IdentityProviderUnavailable, StatusCodes.Status503ServiceUnavailable, "no identity provider is configured (ZeroTrust:Users:Authority or ZeroTrust:Users:EntraId)", null);
        }

        // The algorithm is judged before any key is looked at: "none" and HMAC (the provider's public key used as an
        // HMAC secret) are refused by name, whatever their signature says.
        if (BearerAlgorithm(context.Request) is { } algorithm && !TokenAlgorithms.Asymmetric.Contains(algorithm))
        {
            return (ReasonCode.TokenAlgorithmNotAllowed, StatusCodes.Status401Unauthorized, $"alg '{algorithm}'", null);
        }

        var result = await context.AuthenticateAsync(Scheme);
        if (result.None)
        {
            return (ReasonCode.TokenMissing, StatusCodes.Status401Unauthorized, null, null);
        }

        if (!result.Succeeded)
        {
            var reason = Classify(result.Failure);
            return (reason, reason == ReasonCode.IdentityProviderUnavailable ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status401Unauthorized, result.Failure?.Message, null);
        }

        if (CheckIssuedAt(result.Principal!) is { } age)
        {
            return (age.Reason, StatusCodes.Status401Unauthorized, age.Detail, null);
        }

        // Entra ID: the tenant the issuer names must be the token's own tid as well (Identity.Web checks the tid only
        // when the issuer is a template); one directory's token is never taken for another's.
        if (options.Value.EntraId is { Enabled: true, TenantId: { } tenant } && !string.Equals(result.Principal!.FindFirst("tid")?.Value, tenant, StringComparison.OrdinalIgnoreCase))
        {
            return (ReasonCode.TokenIssuerInvalid, StatusCodes.Status401Unauthorized, $"tid '{result.Principal!.FindFirst("tid")?.Value}' is not the configured tenant", null);
        }

        return (ReasonCode.Allowed, StatusCodes.Status200OK, null, Subject(result.Principal!));
    }

    /// <summary>
    /// <c>iat</c>, which the lifetime validation does not look at: never in the future beyond the clock skew (a token
    /// minted ahead of time, or by a provider whose clock is wrong), and never older than the optional maximum age.
    /// </summary>
    private (ReasonCode Reason, string Detail)? CheckIssuedAt(ClaimsPrincipal principal)
    {
        var o = options.Value;
        var now = timeProvider.GetUtcNow();
        if (!long.TryParse(principal.FindFirst("iat")?.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var iat))
        {
            return o.MaxTokenAge is null ? null : (ReasonCode.TokenTooOld, "the token has no iat, so its age cannot be checked");
        }

        var issued = DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(iat, 0, 253_402_300_799));
        if (issued > now + o.ClockSkew)
        {
            return (ReasonCode.TokenIssuedInFuture, $"iat {issued:u} is ahead of the gateway's clock by more than {o.ClockSkew}");
        }

        return o.MaxTokenAge is { } max && now - issued > max + o.ClockSkew
            ? (ReasonCode.TokenTooOld, $"issued {issued:u}, older than the maximum token age {max}")
            : null;
    }


    /// <summary>The <c>alg</c> of a bearer JWT's header; null when there is no readable one (validation then says why).</summary>
    private static string? BearerAlgorithm(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var token = header.AsSpan(7).Trim();
        var dot = token.IndexOf('.');
        if (dot <= 0)
        {
            return null;
        }

        try
        {
            using var json = System.Text.Json.JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(token[..dot].ToString()));
            return json.RootElement.TryGetProperty("alg", out var alg) && alg.ValueKind == System.Text.Json.JsonValueKind.String ? alg.GetString() : null;
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or FormatException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>The token validation error, as a reason code (the grid of attack 12 of the threat model).</summary>
    internal static ReasonCode Classify(Exception? failure) => failure switch
    {
        SecurityTokenExpiredException => ReasonCode.TokenExpired,
        SecurityTokenNotYetValidException => ReasonCode.TokenNotYetValid,
        SecurityTokenInvalidIssuerException => ReasonCode.TokenIssuerInvalid,
        SecurityTokenInvalidAudienceException => ReasonCode.TokenAudienceInvalid,
        SecurityTokenInvalidAlgorithmException => ReasonCode.TokenAlgorithmNotAllowed,
        SecurityTokenSignatureKeyNotFoundException => ReasonCode.TokenKeyUnknown,
        SecurityTokenInvalidSignatureException => ReasonCode.TokenSignatureInvalid,
        SecurityTokenMalformedException or ArgumentException => ReasonCode.TokenMalformed,
        InvalidOperationException when failure.Message.Contains("IDX20803", StringComparison.Ordinal) => ReasonCode.IdentityProviderUnavailable,
        // Microsoft.Identity.Web (Entra ID): a token with neither scp nor roles.
        AuthenticationFailureException when failure.Message.Contains("IDW10201", StringComparison.Ordinal) => ReasonCode.TokenPermissionsMissing,
        SecurityTokenException => ReasonCode.TokenSignatureInvalid,
        _ => ReasonCode.IdentityProviderUnavailable,
    };

    private UserSubject Subject(ClaimsPrincipal principal)
    {
        var o = options.Value;
        string[] All(string type) => [.. principal.FindAll(type).Select(c => c.Value)];
        var scopes = principal.FindAll("scope").Concat(principal.FindAll("scp")).SelectMany(c => c.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToArray();
        var subject = principal.FindFirst("sub")?.Value ?? principal.FindFirst("client_id")?.Value ?? "unknown";
        return new UserSubject(subject, All(o.RolesClaim), All(o.GroupsClaim), scopes, All("amr"));
    }
}
