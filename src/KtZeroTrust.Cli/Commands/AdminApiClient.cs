using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace KtZeroTrust.Cli.Commands;

/// <summary>Thrown when the admin API refuses; carries the exit code the refusal maps to.</summary>
internal sealed class AdminApiException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>
/// The server's admin API (<c>--server</c>, <c>--token</c>): what the console does, scriptable. The server's certificate
/// is checked against <c>--server-ca</c> (default: the development TLS root in the PKI directory, when present).
/// </summary>
internal sealed class AdminApiClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly Uri _server;

    public AdminApiClient(string server, string? token, string? caFile)
    {
        _server = new Uri(server.TrimEnd('/') + "/");
        var handler = new SocketsHttpHandler();
        if (caFile is not null && File.Exists(caFile))
        {
            var root = X509CertificateLoader.LoadCertificateFromFile(caFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                certificate is X509Certificate2 presented && (errors == System.Net.Security.SslPolicyErrors.None || Pki.Certificates.TrustPolicies.ChainsTo(presented, root));
        }

        _http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
        if (!string.IsNullOrEmpty(token))
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }

    public async Task<JsonElement> LoginAsync(string user, string password, string? newPassword, CancellationToken ct)
        => await SendAsync(HttpMethod.Post, "api/login", new { user, password, newPassword }, ct);

    public async Task<JsonElement> ActionAsync(string serial, string action, string reason, CancellationToken ct)
        => await SendAsync(HttpMethod.Post, $"api/devices/{Uri.EscapeDataString(serial)}/actions", new { action, reason }, ct);

    public async Task<JsonElement> GetAsync(string pathAndQuery, CancellationToken ct) => await SendAsync(HttpMethod.Get, pathAndQuery, null, ct);

    private async Task<JsonElement> SendAsync(HttpMethod method, string path, object? body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, new Uri(_server, path)) { Content = body is null ? null : JsonContent.Create(body) };
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, ct);
        }
        catch (HttpRequestException ex)
        {
            throw new IOException($"cannot reach {_server}: {ex.Message}", ex);
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            var json = text.Length > 0 ? JsonDocument.Parse(text).RootElement.Clone() : default;
            if (response.IsSuccessStatusCode)
            {
                return json;
            }

            var detail = json.ValueKind == JsonValueKind.Object && json.TryGetProperty("detail", out var d) ? d.GetString() : response.ReasonPhrase;
            throw new AdminApiException(response.StatusCode switch
            {
                HttpStatusCode.BadRequest => ExitCodes.Usage,
                HttpStatusCode.NotFound => ExitCodes.NotFound,
                HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.Conflict => ExitCodes.Refused,
                _ => ExitCodes.Failed,
            }, $"{(int)response.StatusCode} {detail}");
        }
    }

    public void Dispose() => _http.Dispose();
}
