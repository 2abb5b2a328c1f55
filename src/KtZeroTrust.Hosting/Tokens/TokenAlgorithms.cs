using System.Collections.Frozen;

namespace KtZeroTrust.Hosting.Tokens;

/// <summary>The JWT signature algorithms any role accepts (user tokens, console ID tokens): asymmetric ones only.</summary>
public static class TokenAlgorithms
{
    public static readonly FrozenSet<string> Asymmetric =
        FrozenSet.ToFrozenSet(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"], StringComparer.Ordinal);
}
