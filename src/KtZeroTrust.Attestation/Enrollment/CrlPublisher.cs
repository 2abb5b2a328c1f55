using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;
using Microsoft.AspNetCore.Http;

namespace KtZeroTrust.Attestation.Enrollment;

/// <summary>
/// The operator CA's CRL, rebuilt whenever the registry has changed since the last build (so every revocation and
/// every superseded certificate is in the next fetch); the CRL number is the registry version.
/// </summary>
public sealed class CrlPublisher(IDeviceRegistry registry, CertificateAuthority operatorCa, TimeProvider timeProvider) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private (long Version, byte[] Der)? _current;

    public async Task<byte[]> GetAsync(CancellationToken cancellationToken)
    {
        var version = await registry.GetVersionAsync(cancellationToken);
        if (_current is { } cached && cached.Version == version)
        {
            return cached.Der;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            var revoked = await registry.GetRevokedCertificatesAsync(cancellationToken);
            var der = operatorCa.BuildCrl(
                revoked.Select(r => (r.SerialNumber, r.RevokedAt, r.Reason == "superseded" ? X509RevocationReason.Superseded : X509RevocationReason.Unspecified)),
                version, timeProvider.GetUtcNow(), TimeSpan.FromDays(1));
            _current = (version, der);
            return der;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task WriteAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var der = await GetAsync(context.RequestAborted);
        context.Response.ContentType = "application/pkix-crl";
        await context.Response.Body.WriteAsync(der, context.RequestAborted);
    }

    public void Dispose() => _gate.Dispose();
}
