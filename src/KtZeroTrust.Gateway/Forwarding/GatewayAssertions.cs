using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using KtZeroTrust.Gateway.Identity;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Gateway.Forwarding;

/// <summary>
/// The signed gateway assertion sent to upstreams (<c>X-ZT-Assertion</c>): a JWT, ES256, about 60 s, audience = the
/// route's upstream, saying who the gateway authenticated and under which decision. Upstreams verify it with the keys
/// published at <c>/.well-known/jwks.json</c> (docs/users-and-policies.md shows how).
/// </summary>
public sealed class GatewayAssertions : IDisposable
{
    private readonly ECDsa _key;
    private readonly byte[] _header;
    private readonly UserGatewayOptions _options;
    private readonly TimeProvider _timeProvider;

    public GatewayAssertions(IOptions<UserGatewayOptions> options, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _timeProvider = timeProvider;
        _key = LoadOrCreate(_options.AssertionKeyPath);
        var parameters = _key.ExportParameters(false);
        KeyId = Base64Url.EncodeToString(SHA256.HashData(_key.ExportSubjectPublicKeyInfo()))[..16];
        _header = Encoding.UTF8.GetBytes(Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(new { alg = "ES256", typ = "JWT", kid = KeyId })));
        Jwks = JsonSerializer.Serialize(new
        {
            keys = new[]
            {
                new { kty = "EC", crv = "P-256", x = Base64Url.EncodeToString(parameters.Q.X), y = Base64Url.EncodeToString(parameters.Q.Y), kid = KeyId, use = "sig", alg = "ES256" },
            },
        });
    }

    public string KeyId { get; }

    /// <summary>The JWK Set document with the public key.</summary>
    public string Jwks { get; }

    public string Issuer => _options.AssertionIssuer;

    public string Create(string audience, string subject, string decisionId, string route, string policyVersion, string[] roles, string[] authenticationMethods, string? deviceSerial)
    {
        var now = _timeProvider.GetUtcNow().ToUnixTimeSeconds();
        var payload = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object?>
        {
            ["iss"] = _options.AssertionIssuer,
            ["aud"] = audience,
            ["sub"] = subject,
            ["iat"] = now,
            ["nbf"] = now,
            ["exp"] = now + (long)_options.AssertionLifetime.TotalSeconds,
            ["jti"] = decisionId,
            ["zt_route"] = route,
            ["zt_policy_version"] = policyVersion,
            ["roles"] = roles,
            ["amr"] = authenticationMethods,
            ["zt_device"] = deviceSerial,
        });
        var signingInput = new byte[_header.Length + 1 + Base64Url.GetEncodedLength(payload.Length)];
        _header.CopyTo(signingInput, 0);
        signingInput[_header.Length] = (byte)'.';
        Base64Url.EncodeToUtf8(payload, signingInput.AsSpan(_header.Length + 1));
        // JWS ES256 wants r||s (IEEE P1363), which is .NET's default signature format for ECDsa.
        var signature = _key.SignData(signingInput, HashAlgorithmName.SHA256);
        return $"{Encoding.ASCII.GetString(signingInput)}.{Base64Url.EncodeToString(signature)}";
    }

    public void Dispose() => _key.Dispose();

    private static ECDsa LoadOrCreate(string? path)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        if (path is null)
        {
            return key; // in memory: upstreams must fetch the JWKS again after a restart
        }

        if (File.Exists(path))
        {
            key.ImportFromPem(File.ReadAllText(path));
            return key;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, key.ExportPkcs8PrivateKeyPem());
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        return key;
    }
}
