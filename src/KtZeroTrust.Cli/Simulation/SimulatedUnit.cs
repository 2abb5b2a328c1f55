using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Pki.Attestation;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.Est;

namespace KtZeroTrust.Cli.Simulation;

/// <summary>What the simulator knows about the server it talks to.</summary>
internal sealed record SimulationTarget(Uri Enrollment, Uri Gateway, X509Certificate2 TlsRoot, ReferenceValues Reference, X509Certificate2 OperatorCa);

/// <summary>How a simulated unit enrolls: EST simpleenroll, or a CMPv2 ir with certConf.</summary>
internal enum EnrollmentProtocol
{
    Est,
    Cmp,
}

/// <summary>The answer to one step: HTTP status and, for refusals, the reason code.</summary>
internal sealed record StepResult(HttpStatusCode Status, string? Reason, JsonElement Body)
{
    public bool Ok => Status == HttpStatusCode.OK;
}

/// <summary>
/// One femtocell as the simulator plays it: it holds its factory identity (IDevID), asks for a nonce, builds and signs
/// real evidence, enrolls over EST or CMP with a fresh key, then talks to the device gateway with what it got.
/// </summary>
internal sealed class SimulatedUnit : IDisposable
{
    private readonly SimulationTarget _target;
    private readonly HttpClient _enrollment;
    private readonly IPAddress? _localAddress;
    private HttpClient? _current; // presents the current operational certificate: the gateway, and renewals

    public SimulatedUnit(SimulationTarget target, string serial, string model, string? site, X509Certificate2 factory, IPAddress? localAddress = null)
    {
        _target = target;
        Serial = serial;
        Model = model;
        Site = site;
        Factory = factory;
        _localAddress = localAddress;
        _enrollment = Client(factory);
    }

    public string Serial { get; }
    public string Model { get; }
    public string? Site { get; }
    public X509Certificate2 Factory { get; }
    public X509Certificate2? Operational { get; private set; }

    public SimulationTarget GetTarget() => _target;

    /// <summary>A nonce, asked over TLS with the IDevID (or with <paramref name="via"/>'s certificate: a renewal).</summary>
    public async Task<(StepResult Result, string? Nonce)> NonceAsync(CancellationToken ct, HttpClient? via = null)
    {
        var result = await SendAsync(via ?? _enrollment, new HttpRequestMessage(HttpMethod.Post, new Uri(_target.Enrollment, "/attest/nonce")), ct);
        return (result, result.Ok ? result.Body.GetProperty("nonce").GetString() : null);
    }

    /// <summary>The claims an honest unit of this model at its site makes.</summary>
    public EvidenceClaims HonestClaims(string nonce)
    {
        var site = _target.Reference.Sites.FirstOrDefault(s => s.Id == Site);
        var firmware = _target.Reference.Firmware.Where(f => f.Model == Model).OrderByDescending(f => f.Version, Comparer<string>.Create(FirmwareVersion.Compare)).FirstOrDefault();
        return new EvidenceClaims
        {
            Serial = Serial,
            Nonce = nonce,
            Firmware = new FirmwareClaim(firmware?.Version ?? "0", firmware?.Sha256 ?? new string('0', 64)),
            Config = new Dictionary<string, bool> { ["ssh_enabled"] = false, ["debug_enabled"] = false },
            Location = site is null ? null : new LocationClaim(site.Latitude + 0.0005, site.Longitude + 0.0005),
            NeighbourCells = site is null ? [] : [.. site.NeighbourCells.Take(1)],
            BootCounter = 1,
            Time = DateTimeOffset.UtcNow,
        };
    }

    public async Task<(StepResult Result, string? Token)> AttestAsync(EvidenceClaims claims, CancellationToken ct, X509Certificate2? signer = null, HttpClient? via = null)
    {
        var evidence = Evidence.Create(claims, signer ?? Factory);
        StepResult result;
        while (true)
        {
            using var content = new ByteArrayContent(evidence);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/cms");
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_target.Enrollment, "/attest/evidence")) { Content = content };
            if (await DeferredAsync(via ?? _enrollment, request, ct) is { } answer)
            {
                result = answer;
                break;
            }
        }

        return (result, result.Ok ? result.Body.GetProperty("enrollmentToken").GetString() : null);
    }

    /// <summary>EST simpleenroll with the IDevID over TLS (simplereenroll with <paramref name="via"/>'s current certificate); on success the unit keeps the certificate.</summary>
    public async Task<StepResult> EnrollAsync(string challenge, CancellationToken ct, ECDsa? key = null, HttpClient? via = null)
    {
        var ownsKey = key is null;
        key ??= ECDsa.Create(ECCurve.NamedCurves.nistP256);
        try
        {
            var csr = Convert.ToBase64String(EstEncoding.CreateCsr(Serial, key, challenge));
            HttpResponseMessage response;
            while (true)
            {
                using var content = new StringContent(csr, Encoding.ASCII);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
                using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(_target.Enrollment, via is null ? "/.well-known/est/simpleenroll" : "/.well-known/est/simplereenroll")) { Content = content };
                try
                {
                    response = await (via ?? _enrollment).SendAsync(message, ct);
                }
                catch (HttpRequestException ex)
                {
                    // Refused or cut below HTTP: a result like any other refusal, never an unhandled exit.
                    return new StepResult(0, "connection_refused:" + ex.HttpRequestError, default);
                }

                // RFC 7030 4.2.3: 202 Accepted with Retry-After: the CA is busy; the same request again after the wait.
                if (response.StatusCode != HttpStatusCode.Accepted || Deferrals >= MaxDeferrals)
                {
                    break;
                }

                await WaitRetryAfterAsync(response, ct);
                response.Dispose();
            }

            using var _ = response;
            var text = await response.Content.ReadAsStringAsync(ct);
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                return new StepResult(response.StatusCode, "enrollment_deferred", default); // deferred more often than a unit waits
            }

            if (!response.IsSuccessStatusCode)
            {
                return Refusal(response.StatusCode, text);
            }

            Keep(EstEncoding.ReadCertsOnly(Convert.FromBase64String(text))[0].CopyWithPrivateKey(key));
            return new StepResult(HttpStatusCode.OK, null, default);
        }
        finally
        {
            if (ownsKey)
            {
                key.Dispose();
            }
        }
    }

    /// <summary>CMP ir signed with the IDevID after the attestation (kur signed with the current certificate: a renewal), then certConf; on success the unit keeps the certificate.</summary>
    public async Task<StepResult> EnrollCmpAsync(CancellationToken ct, bool renewal = false)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var operatorCaKey = _target.OperatorCa.GetECDsaPublicKey() ?? throw new InvalidOperationException("The operator CA has no ECDSA key.");
        var cmp = new CmpEnrollment(_enrollment, new Uri(_target.Enrollment, "/.well-known/cmp"), _target.OperatorCa, operatorCaKey);
        var signer = renewal ? Operational ?? throw new InvalidOperationException($"{Serial} has no certificate to renew.") : Factory;
        var (result, certificate) = await cmp.EnrollAsync(Serial, signer, key, WaitCheckAfterAsync, ct, renewal);
        if (certificate is not null)
        {
            using (certificate)
            {
                Keep(certificate.CopyWithPrivateKey(key));
            }
        }

        return result;
    }

    /// <summary>
    /// Renews as a deployed unit does: a fresh attestation (evidence signed by the IDevID) posted over TLS with the
    /// current certificate, then EST simplereenroll over that TLS, or a CMP kur signed with the current certificate.
    /// </summary>
    public async Task<StepResult> RenewAsync(EnrollmentProtocol over, CancellationToken ct)
    {
        var current = _current ?? throw new InvalidOperationException($"{Serial} has no certificate to renew.");
        var (nonceResult, nonce) = await NonceAsync(ct, current);
        if (nonce is null)
        {
            return nonceResult;
        }

        var (attested, _) = await AttestAsync(HonestClaims(nonce), ct, via: current);
        return !attested.Ok ? attested : over == EnrollmentProtocol.Cmp ? await EnrollCmpAsync(ct, renewal: true) : await EnrollAsync(nonce, ct, via: current);
    }

    /// <summary>When the current certificate was received (its renewal point is a fraction of the time from here to notAfter).</summary>
    public DateTimeOffset ReceivedAt { get; private set; }

    private void Keep(X509Certificate2 operational)
    {
        ReceivedAt = DateTimeOffset.UtcNow;
        Operational?.Dispose();
        Operational = operational;
        _current?.Dispose();
        _current = Client(Operational);
    }

    /// <summary>One request through the device gateway with the operational certificate (or another one given).</summary>
    public async Task<StepResult> CallGatewayAsync(CancellationToken ct, X509Certificate2? certificate = null)
    {
        if (certificate is not null)
        {
            using var other = Client(certificate);
            return await SendAsync(other, new HttpRequestMessage(HttpMethod.Get, new Uri(_target.Gateway, "/femto/status")), ct);
        }

        if (_current is null)
        {
            throw new InvalidOperationException($"{Serial} has no operational certificate yet.");
        }

        return await SendAsync(_current, new HttpRequestMessage(HttpMethod.Get, new Uri(_target.Gateway, "/femto/status")), ct);
    }

    public void Dispose()
    {
        _enrollment.Dispose();
        _current?.Dispose();
        Operational?.Dispose();
    }

    /// <summary>How often this unit was told to come back later (202 or 429 with Retry-After).</summary>
    public int Deferrals { get; private set; }

    private const int MaxDeferrals = 30;

    /// <summary>Sends; null when the answer was a deferral (429 + Retry-After) that has been waited out, so the caller sends again.</summary>
    private async Task<StepResult?> DeferredAsync(HttpClient client, HttpRequestMessage request, CancellationToken ct)
    {
        try
        {
            using var response = await client.SendAsync(request, ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            if (response.StatusCode == HttpStatusCode.TooManyRequests && response.Headers.RetryAfter is not null && Deferrals < MaxDeferrals)
            {
                await WaitRetryAfterAsync(response, ct);
                return null;
            }

            return response.IsSuccessStatusCode ? new StepResult(response.StatusCode, null, Parse(text)) : Refusal(response.StatusCode, text);
        }
        catch (HttpRequestException ex)
        {
            return new StepResult(0, "connection_refused:" + ex.HttpRequestError, default);
        }
    }

    private Task<bool> WaitRetryAfterAsync(HttpResponseMessage response, CancellationToken ct)
        => WaitCheckAfterAsync(response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(5), ct);

    /// <summary>Waits out the server's hint (its jitter included, at most 2 minutes); false when this unit has waited too often.</summary>
    private async Task<bool> WaitCheckAfterAsync(TimeSpan wait, CancellationToken ct)
    {
        if (Deferrals >= MaxDeferrals)
        {
            return false;
        }

        Deferrals++;
        await Task.Delay(wait > TimeSpan.FromMinutes(2) ? TimeSpan.FromMinutes(2) : wait, ct);
        return true;
    }

    private static async Task<StepResult> SendAsync(HttpClient client, HttpRequestMessage request, CancellationToken ct)
    {
        using (request)
        {
            try
            {
                using var response = await client.SendAsync(request, ct);
                var text = await response.Content.ReadAsStringAsync(ct);
                return response.IsSuccessStatusCode ? new StepResult(response.StatusCode, null, Parse(text)) : Refusal(response.StatusCode, text);
            }
            catch (HttpRequestException ex)
            {
                // A refused handshake or a cut connection: the gateway said no below HTTP.
                return new StepResult(0, "connection_refused:" + ex.HttpRequestError, default);
            }
        }
    }

    private static StepResult Refusal(HttpStatusCode status, string text)
    {
        var body = Parse(text);
        var reason = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("reasonCode", out var r) ? r.GetString() : null;
        return new StepResult(status, reason, body);
    }

    private static JsonElement Parse(string text)
    {
        try
        {
            return JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException)
        {
            return default;
        }
    }

    private HttpClient Client(X509Certificate2 certificate)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = [certificate],
                LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate,
                RemoteCertificateValidationCallback = (_, server, _, _) => server is X509Certificate2 s && TrustPolicies.ChainsTo(s, _target.TlsRoot),
            },
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        if (_localAddress is { } local)
        {
            // Bind the source address (a clone on another host, simulated on loopback 127.0.0.x).
            handler.ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    socket.Bind(new IPEndPoint(local, 0));
                    var endpoint = context.DnsEndPoint;
                    if (endpoint.Host is "localhost")
                    {
                        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, endpoint.Port), ct);
                    }
                    else
                    {
                        await socket.ConnectAsync(endpoint, ct);
                    }

                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }

        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
    }
}
