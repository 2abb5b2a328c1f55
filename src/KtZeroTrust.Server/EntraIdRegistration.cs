using System.Runtime.CompilerServices;
using KtZeroTrust.Gateway.EntraId;
using KtZeroTrust.Gateway.Identity;

namespace KtZeroTrust.Server;

internal static class EntraIdRegistration
{
    /// <summary>
    /// Kept out of line: the JIT loads Microsoft.Identity.Web (and MSAL, Azure.Identity) only when this runs, that is only
    /// on a node configured for Entra ID.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void AddEntraIdUsers(this IServiceCollection services, UserGatewayOptions users) => services.AddEntraIdUserTokens(users);
}
