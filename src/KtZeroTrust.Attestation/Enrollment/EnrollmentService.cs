using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Attestation.Verification;
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.Est;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Attestation.Enrollment;

/// <summary>How the EST client proved who it is.</summary>
public sealed record EnrollmentCredentials(X509Certificate2? ClientCertificate, string? BasicUser, string? BasicPassword);

/// <summary>
/// EST issuance (RFC 7030 simpleenroll / simplereenroll) gated by attestation: the CSR's challengePassword must be the
/// nonce of a passing, unexpired, unused attestation of the same unit. The certificate's subject and SAN come from the
/// registry; the CSR contributes its key only, which no other device may hold.
/// </summary>
public sealed class EnrollmentService(
    IDeviceRegistry registry,
    CertificateAuthority operatorCa,
    VendorTrust vendorTrust,
    IOptions<AttestationOptions> options,
    TimeProvider timeProvider)
{
    public const string Actor = "est";

    /// <summary>Issues an operational certificate, or throws <see cref="EnrollmentException"/> with the reason.</summary>
    public async Task<(X509Certificate2 Certificate, string Serial)> EnrollAsync(byte[] csrDer, EnrollmentCredentials credentials, bool reenroll, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        var now = timeProvider.GetUtcNow();
        var csr = CsrParser.Parse(csrDer);
        var (serial, clientHash) = reenroll ? await AuthenticateRenewalAsync(credentials, now, cancellationToken) : AuthenticateInitial(credentials);

        if (csr.ChallengePassword is null)
        {
            throw new EnrollmentException(ReasonCode.AttestationRequired, "The CSR carries no challengePassword: put the nonce of a passing attestation in it.", 403);
        }

        var attestation = await registry.FindUsableAttestationAsync(serial, csr.ChallengePassword, now, cancellationToken)
            ?? throw new EnrollmentException(ReasonCode.AttestationRequired, $"No passing, unexpired, unused attestation of '{serial}' has that nonce.", 403);
        if (credentials.BasicPassword is not null && credentials.ClientCertificate is null
            && attestation.EnrollmentTokenSha256 != AttestationVerifier.TokenHash(credentials.BasicPassword))
        {
            throw new EnrollmentException(ReasonCode.EnrollmentTokenInvalid, "The enrollment token does not belong to that attestation.", 401);
        }

        if (reenroll && attestation.ClientCertificateSha256 != clientHash)
        {
            throw new EnrollmentException(ReasonCode.AttestationRequired, "Renewal needs an attestation posted with the certificate being renewed.", 403);
        }

        if (csr.SubjectSerial is { } named && named != serial)
        {
            throw new EnrollmentException(ReasonCode.CsrIdentityMismatch, $"The CSR names '{named}', but the attested unit is '{serial}'.", 403);
        }

        if (await registry.FindSerialByPublicKeyAsync(csr.PublicKeySha256, cancellationToken) is { } holder && holder != serial)
        {
            throw new EnrollmentException(ReasonCode.KeyShared, $"This public key is already bound to device '{holder}': one key, one device.", 403);
        }

        var certificate = Issue(serial, csr.Request.PublicKey, now);
        await CommitAsync(serial, attestation.Id, certificate, csr.PublicKeySha256, Actor, now, cancellationToken);
        return (certificate, serial);
    }

    /// <summary>A certificate for <paramref name="serial"/>'s key: subject and SAN from the serial, the CRL and OCSP named, a renewal hint, short-lived. Not yet recorded.</summary>
    public X509Certificate2 Issue(string serial, PublicKey publicKey, DateTimeOffset now)
    {
        var lifetime = options.Value.CertificateLifetime;
        if (lifetime <= TimeSpan.Zero || lifetime > DeviceCertificates.AbsoluteMaxLifetime)
        {
            lifetime = DeviceCertificates.AbsoluteMaxLifetime;
        }

        var organization = DeviceCertificates.OrganizationOf(operatorCa.Certificate);
        return operatorCa.Issue(DeviceCertificates.Subject(serial, organization), publicKey, CertificateUsage.ClientAuth,
            now.AddMinutes(-1), now + lifetime, uri: DeviceCertificates.DeviceUri(serial), crlDistributionPoints: CrlUrls(),
            ocspResponders: options.Value.OcspUrl is { Length: > 0 } ocsp ? [ocsp] : null,
            extensions: [RenewalHint.Create(now, now + lifetime, Random.Shared)]); // units renew spread out, not together
    }

    /// <summary>
    /// Records an issued certificate in one transaction (the attestation consumed, the key bound to this device only,
    /// previous certificates superseded, a Provisioned device made Active): from here on the allow list admits it.
    /// Disposes the certificate and throws <see cref="EnrollmentException"/> when the registry refuses.
    /// </summary>
    public async Task CommitAsync(string serial, string attestationId, X509Certificate2 certificate, string publicKeySha256, string actor, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        try
        {
            await registry.EnrollAsync(new EnrollmentCommit
            {
                AttestationId = attestationId,
                Certificate = new DeviceCertificateRecord
                {
                    PublicKeySha256 = publicKeySha256,
                    Sha256 = CertificateHash.Of(certificate).ToString(),
                    DeviceSerial = serial,
                    CertificateSerialNumber = certificate.SerialNumber,
                    NotBefore = certificate.NotBefore.ToUniversalTime(),
                    NotAfter = certificate.NotAfter.ToUniversalTime(),
                    IssuedAt = now,
                },
            }, actor, now, cancellationToken);
        }
        catch (RegistryException ex)
        {
            certificate.Dispose();
            throw ex.Code switch
            {
                RegistryException.KeyShared => new EnrollmentException(ReasonCode.KeyShared, ex.Message, 403),
                RegistryException.AttestationUnusable => new EnrollmentException(ReasonCode.AttestationRequired, ex.Message, 403),
                RegistryException.TransitionNotAllowed => new EnrollmentException(ReasonCode.DeviceNotEnrollable, ex.Message, 403),
                RegistryException.DeviceNotFound => new EnrollmentException(ReasonCode.DeviceUnknown, ex.Message, 403),
                _ => ex,
            };
        }
    }

    private string[] CrlUrls() => options.Value.CrlUrl is { Length: > 0 } url ? [url] : [];

    /// <summary>simpleenroll: the IDevID as TLS client certificate, or HTTP Basic (serial, enrollment token).</summary>
    private (string Serial, string? ClientHash) AuthenticateInitial(EnrollmentCredentials credentials)
    {
        if (credentials.ClientCertificate is { } client)
        {
            if (!vendorTrust.IsFactoryIdentity(client) || DeviceCertificates.SerialOf(client) is not { } serial)
            {
                throw new EnrollmentException(ReasonCode.EvidenceSignerUntrusted, "The TLS client certificate is not a factory identity (IDevID) of a trusted vendor.", 403);
            }

            return (serial, CertificateHash.Of(client).ToString());
        }

        if (credentials.BasicUser is { } user && credentials.BasicPassword is not null)
        {
            if (!DeviceSerial.IsValid(user))
            {
                throw new EnrollmentException(ReasonCode.EnrollmentTokenInvalid, "The Basic user name must be the device serial.", 401);
            }

            return (user, null);
        }

        throw new EnrollmentException(ReasonCode.ClientCertificateRequired, "Authenticate with the factory certificate (TLS) or with HTTP Basic: serial and enrollment token.", 401);
    }

    /// <summary>simplereenroll: the current operational certificate as TLS client certificate, still on the allow list.</summary>
    private Task<(string Serial, string? ClientHash)> AuthenticateRenewalAsync(EnrollmentCredentials credentials, DateTimeOffset now, CancellationToken cancellationToken)
        => credentials.ClientCertificate is { } client
            ? AuthenticateCurrentAsync(client, now, cancellationToken)
            : throw new EnrollmentException(ReasonCode.ClientCertificateRequired, "Renewal needs the current operational certificate as TLS client certificate.", 401);

    /// <summary>
    /// The unit may start an enrollment (the nonce endpoint, a CMP ir/cr/p10cr): it is registered, provisioned or
    /// active, and, when <paramref name="factoryIdentitySha256"/> is given, holds the IDevID its manifest names.
    /// </summary>
    public async Task<DeviceRecord> RequireEnrollableAsync(string serial, string? factoryIdentitySha256, CancellationToken cancellationToken)
    {
        var device = await registry.FindAsync(serial, cancellationToken)
            ?? throw new EnrollmentException(ReasonCode.DeviceUnknown, $"No device '{serial}' is registered.", 403);
        if (device.State is not (DeviceLifecycleState.Provisioned or DeviceLifecycleState.Active))
        {
            throw new EnrollmentException(ReasonCode.DeviceNotEnrollable, $"Device '{serial}' is {device.State}.", 403);
        }

        if (factoryIdentitySha256 is not null && device.IDevIdSha256 is { } registered && !string.Equals(registered, factoryIdentitySha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new EnrollmentException(ReasonCode.IdentityMismatch, $"The IDevID is not the one the manifest names for '{serial}'.", 403);
        }

        return device;
    }

    /// <summary>Renewal (EST simplereenroll, CMP kur): the unit's current operational certificate, still on the allow list; its serial and hash.</summary>
    public async Task<(string Serial, string? ClientHash)> AuthenticateCurrentAsync(X509Certificate2 client, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        if (!TrustPolicies.ChainsTo(client, operatorCa.Certificate))
        {
            throw new EnrollmentException(ReasonCode.ClientCertificateRequired, "Renewal needs the current operational certificate (issued by the operator CA).", 401);
        }

        var hash = CertificateHash.Of(client);
        var entry = await registry.FindAllowListEntryAsync(hash, cancellationToken);
        if (entry is null || entry.CertificateRevoked || entry.State != DeviceLifecycleState.Active || now.UtcTicks >= entry.NotAfterUtcTicks)
        {
            throw new EnrollmentException(ReasonCode.CertificateRevoked, "The certificate presented for renewal is not current (revoked, superseded, expired, or its device is not active).", 403);
        }

        return (entry.DeviceSerial, hash.ToString());
    }
}
