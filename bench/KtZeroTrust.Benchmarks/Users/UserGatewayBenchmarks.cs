using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using KtZeroTrust.Gateway.Identity;
using KtZeroTrust.Gateway.Policy;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace KtZeroTrust.Benchmarks.Users;

/// <summary>Per-request cost on the user listener: policy evaluation (target 0 B) and token validation with the key already known.</summary>
[MemoryDiagnoser]
public class UserGatewayBenchmarks : IDisposable
{
    private static readonly string[] Roles = ["payments"];
    private static readonly string[] Amr = ["pwd", "otp"];
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly JsonWebTokenHandler _handler = new();
    private CompiledRoutePolicy _policy = null!;
    private UserSubject _user;
    private IPAddress _source = null!;
    private string _token = null!;
    private TokenValidationParameters _parameters = null!;

    [GlobalSetup]
    public void Setup()
    {
        _policy = PolicySet.Compile(new Dictionary<string, RoutePolicyOptions>
        {
            ["payments"] = new() { Roles = ["noc", "payments"], Groups = ["finance"], Scopes = ["apps:read"], RequireMfa = true, Methods = ["GET", "POST"], SourcePrefixes = ["10.0.0.0/8", "127.0.0.0/8"], Models = ["KTF-HNB-LTE", "KTF-HNB-5G"] },
        }).Find("payments")!;
        _user = new UserSubject("alice", ["payments"], ["finance"], ["apps:read"], ["pwd", "otp"]);
        _source = IPAddress.Loopback;
        var key = new ECDsaSecurityKey(_key) { KeyId = "k1" };
        _token = _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = "https://idp.example", Audience = "https://gateway.example", Subject = new ClaimsIdentity([new Claim("sub", "alice")]),
            Claims = new Dictionary<string, object> { ["roles"] = Roles, ["amr"] = Amr },
            Expires = DateTime.UtcNow.AddHours(1),
            SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.EcdsaSha256),
        });
        _parameters = new TokenValidationParameters
        {
            ValidIssuer = "https://idp.example", ValidAudience = "https://gateway.example", IssuerSigningKeys = [key],
            ValidAlgorithms = KtZeroTrust.Hosting.Tokens.TokenAlgorithms.Asymmetric, ClockSkew = TimeSpan.FromSeconds(30),
        };
    }

    [Benchmark]
    public Core.Decisions.ReasonCode EvaluatePolicy() => _policy.Evaluate(_user, "GET", _source, hasDeviceCertificate: false);

    [Benchmark]
    public Core.Decisions.ReasonCode EvaluateDevicePolicy() => _policy.EvaluateDevice("KTF-HNB-5G", "site-1", "GET", _source);

    [Benchmark]
    public async Task<bool> ValidateToken() => (await _handler.ValidateTokenAsync(_token, _parameters)).IsValid;

    public void Dispose()
    {
        _key.Dispose();
        GC.SuppressFinalize(this);
    }
}
