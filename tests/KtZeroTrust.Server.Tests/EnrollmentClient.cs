using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Pki.Attestation;

namespace KtZeroTrust.Server.Tests;

/// <summary>The reference values every test server imports: one site, two firmware builds of the sample model.</summary>
public static class TestReference
{
    public const string Model = "KTF-HNB-5G";
    public const string CurrentVersion = "5.2.1";
    public const string OldVersion = "5.0.0";
    public const double Latitude = 37.5;
    public const double Longitude = 127.0;
    public static readonly string[] Cells = ["450-08-9999-0001", "450-08-9999-0002"];

    public static string Digest(string version) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{Model} firmware {version}")));

    public static ReferenceValues Values { get; } = new()
    {
        Sites = [new Site { Id = "test-site", Latitude = Latitude, Longitude = Longitude, RadiusMeters = 500, NeighbourCells = Cells, AllowedPrefixes = ["127.0.0.0/8"] }],
        Firmware =
        [
            new FirmwareReference { Model = Model, Version = CurrentVersion, Sha256 = Digest(CurrentVersion) },
            new FirmwareReference { Model = Model, Version = OldVersion, Sha256 = Digest(OldVersion) },
        ],
        Models = [new ModelPolicy { Model = Model, MinimumVersion = "5.1.0", ForbiddenFlags = ["ssh_enabled", "debug_enabled"] }],
    };

    /// <summary>What an honest unit at the test site reports.</summary>
    public static EvidenceClaims HonestClaims(string serial, string nonce) => new()
    {
        Serial = serial,
        Nonce = nonce,
        Firmware = new FirmwareClaim(CurrentVersion, Digest(CurrentVersion)),
        Config = new Dictionary<string, bool> { ["ssh_enabled"] = false, ["debug_enabled"] = false },
        Location = new LocationClaim(Latitude + 0.001, Longitude + 0.001),
        NeighbourCells = [Cells[0]],
        BootCounter = 7,
        Time = DateTimeOffset.UtcNow,
    };
}

/// <summary>A unit talking to the enrollment listener with some TLS client certificate.</summary>
public sealed class EnrollmentClient(ServerFixture server, X509Certificate2? clientCertificate) : IDisposable
{
    private readonly HttpClient _http = server.DeviceClient(clientCertificate);

    public async Task<HttpResponseMessage> NonceResponseAsync(CancellationToken ct)
        => await _http.PostAsync(server.EnrollmentUri("/attest/nonce"), null, ct);

    public async Task<string> NonceAsync(CancellationToken ct)
    {
        using var response = await NonceResponseAsync(ct);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("nonce").GetString()!;
    }

    public async Task<HttpResponseMessage> EvidenceAsync(byte[] cms, CancellationToken ct, string contentType = "application/cms")
    {
        using var content = new ByteArrayContent(cms);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return await _http.PostAsync(server.EnrollmentUri("/attest/evidence"), content, ct);
    }

    /// <summary>Nonce, honest evidence signed by <paramref name="factory"/>: the attestation response (token inside).</summary>
    public async Task<(string Nonce, string Token)> AttestAsync(string serial, X509Certificate2 factory, CancellationToken ct, Func<EvidenceClaims, EvidenceClaims>? tweak = null)
    {
        var nonce = await NonceAsync(ct);
        var claims = TestReference.HonestClaims(serial, nonce);
        using var response = await EvidenceAsync(Evidence.Create(tweak is null ? claims : tweak(claims), factory), ct);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"attestation failed: {body}");
        }

        return (nonce, body.GetProperty("enrollmentToken").GetString()!);
    }

    public async Task<HttpResponseMessage> EnrollAsync(byte[] csrDer, CancellationToken ct, (string User, string Password)? basic = null, bool reenroll = false, string contentType = "application/pkcs10")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, server.EnrollmentUri(reenroll ? "/.well-known/est/simplereenroll" : "/.well-known/est/simpleenroll"))
        {
            Content = new StringContent(Convert.ToBase64String(csrDer), Encoding.ASCII, contentType),
        };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (basic is { } b)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{b.User}:{b.Password}")));
        }

        return await _http.SendAsync(request, ct);
    }

    /// <summary>A CSR with a fresh (or given) P-256 key and the nonce as challengePassword.</summary>
    public static (byte[] Der, ECDsa Key) Csr(string commonName, string? challenge, ECDsa? key = null)
    {
        key ??= ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return (KtZeroTrust.Pki.Est.EstEncoding.CreateCsr(commonName, key, challenge), key);
    }

    /// <summary>The certificate out of an EST certs-only response.</summary>
    public static async Task<X509Certificate2> IssuedAsync(HttpResponseMessage response, ECDsa key, CancellationToken ct)
    {
        var der = Convert.FromBase64String(await response.Content.ReadAsStringAsync(ct));
        return KtZeroTrust.Pki.Est.EstEncoding.ReadCertsOnly(der)[0].CopyWithPrivateKey(key);
    }

    public void Dispose() => _http.Dispose();
}
