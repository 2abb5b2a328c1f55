using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using KtZeroTrust.Attestation.Nonces;
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Attestation;
using KtZeroTrust.Pki.Certificates;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Attestation.Verification;

/// <summary>The result of one appraisal; a pass carries the single-use enrollment token (returned once, stored hashed).</summary>
public sealed record AttestationOutcome(AttestationRecord Record, IReadOnlyList<ReasonCode> Failures, string? EnrollmentToken)
{
    public bool Passed => Failures.Count == 0;
}

/// <summary>
/// The Verifier (RFC 9334): appraises a unit's evidence against the registry and the reference values. The signature
/// and the signer's chain must hold before any claim is read; after that every claim is checked and every failure
/// reported, so the decision log says everything that was wrong with a rogue unit, not just the first thing.
/// </summary>
public sealed class AttestationVerifier(
    IDeviceRegistry registry,
    INonceStore nonces,
    VendorTrust vendorTrust,
    IOptions<AttestationOptions> options,
    DecisionFactory ids,
    TimeProvider timeProvider)
{
    /// <summary>
    /// Appraises <paramref name="cms"/> posted over TLS with <paramref name="client"/>. Throws
    /// <see cref="EnrollmentException"/> when the evidence cannot be read or its signer is not trusted.
    /// </summary>
    public async Task<AttestationOutcome> AppraiseAsync(byte[] cms, X509Certificate2 client, string? sourceAddress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        var evidence = Evidence.Read(cms, vendorTrust.IsFactoryIdentity);
        var claims = evidence.Claims;
        var now = timeProvider.GetUtcNow();
        var failures = new List<ReasonCode>();

        var signerSerial = DeviceCertificates.SerialOf(evidence.Signer);
        var clientSerial = DeviceCertificates.SerialOf(client);
        if (signerSerial != claims.Serial || clientSerial != claims.Serial)
        {
            failures.Add(ReasonCode.IdentityMismatch);
        }

        // The nonce is consumed whatever else is wrong: a nonce is good for one try.
        var nonceOwner = await nonces.ConsumeAsync(claims.Nonce, cancellationToken);
        if (nonceOwner != claims.Serial)
        {
            failures.Add(ReasonCode.NonceInvalid);
        }

        if ((now - claims.Time).Duration() > options.Value.MaxClockSkew)
        {
            failures.Add(ReasonCode.EvidenceStale);
        }

        var device = DeviceSerial.IsValid(claims.Serial) ? await registry.FindAsync(claims.Serial, cancellationToken) : null;
        if (device is null)
        {
            failures.Add(ReasonCode.DeviceUnknown);
        }
        else
        {
            if (device.State is not (DeviceLifecycleState.Provisioned or DeviceLifecycleState.Active))
            {
                failures.Add(ReasonCode.DeviceNotEnrollable);
            }

            if (device.IDevIdSha256 is { } registered && !string.Equals(registered, CertificateHash.Of(evidence.Signer).ToString(), StringComparison.OrdinalIgnoreCase))
            {
                failures.Add(ReasonCode.IdentityMismatch); // signed by a factory identity other than the one in the manifest
            }

            if (device.LastBootCounter is { } lastBoot && claims.BootCounter < lastBoot)
            {
                // The counter only grows: a lower one is replayed or forged evidence, or a unit reset to old state.
                failures.Add(ReasonCode.BootCounterRollback);
            }

            await CheckFirmwareAsync(device, claims, failures, cancellationToken);
            await CheckSiteAsync(device, claims, failures, cancellationToken);
        }

        failures = [.. failures.Distinct()];
        string? token = null;
        if (failures.Count == 0)
        {
            token = Nonce.Base64Url(RandomNumberGenerator.GetBytes(32));
        }

        var record = new AttestationRecord
        {
            Id = ids.NextId(), // the same sortable ids as decisions
            Serial = claims.Serial,
            Nonce = claims.Nonce,
            Passed = failures.Count == 0,
            Reasons = [.. failures.Select(ReasonCodes.Name)],
            FirmwareVersion = claims.Firmware.Version,
            BootCounter = claims.BootCounter,
            Latitude = claims.Location?.Latitude,
            Longitude = claims.Location?.Longitude,
            SourceAddress = sourceAddress,
            ClientCertificateSha256 = CertificateHash.Of(client).ToString(),
            EnrollmentTokenSha256 = token is null ? null : TokenHash(token),
            At = now,
            ExpiresAt = now + options.Value.EnrollmentWindow,
        };
        if (device is not null)
        {
            await registry.RecordAttestationAsync(record, cancellationToken);
        }

        return new AttestationOutcome(record, failures, token);
    }

    public static string TokenHash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private async Task CheckFirmwareAsync(DeviceRecord device, EvidenceClaims claims, List<ReasonCode> failures, CancellationToken cancellationToken)
    {
        var references = await registry.GetFirmwareAsync(device.Model, cancellationToken);
        if (!references.Any(r => r.Version == claims.Firmware.Version && string.Equals(r.Sha256, claims.Firmware.Sha256, StringComparison.OrdinalIgnoreCase)))
        {
            failures.Add(ReasonCode.FirmwareUnknown);
        }

        var policy = await registry.FindModelPolicyAsync(device.Model, cancellationToken) ?? new ModelPolicy { Model = device.Model };
        if ((policy.MinimumVersion is { } minimum && FirmwareVersion.Compare(claims.Firmware.Version, minimum) < 0)
            || (device.LastFirmwareVersion is { } last && FirmwareVersion.Compare(claims.Firmware.Version, last) < 0))
        {
            failures.Add(ReasonCode.FirmwareRollback);
        }

        if (policy.ForbiddenFlags.Any(flag => claims.Config.TryGetValue(flag, out var on) && on))
        {
            failures.Add(ReasonCode.ConfigurationForbidden);
        }
    }

    private async Task CheckSiteAsync(DeviceRecord device, EvidenceClaims claims, List<ReasonCode> failures, CancellationToken cancellationToken)
    {
        var site = device.Site is null ? null : await registry.FindSiteAsync(device.Site, cancellationToken);
        if (site is null)
        {
            failures.Add(ReasonCode.SiteUnknown);
            return;
        }

        if (claims.Location is not { } location
            || GeoDistance.Meters(location.Latitude, location.Longitude, site.Latitude, site.Longitude) > site.RadiusMeters)
        {
            failures.Add(ReasonCode.LocationOutsideSite);
        }

        if (site.NeighbourCells.Count > 0 && !claims.NeighbourCells.Any(site.NeighbourCells.Contains))
        {
            failures.Add(ReasonCode.NeighbourCellsMismatch);
        }
    }
}

/// <summary>
/// The vendor roots factory identities (IDevIDs) must chain to. A unit presents the same factory certificate on every
/// step of every enrollment, so the chain decision is remembered by certificate hash (bounded) instead of rebuilt.
/// </summary>
public sealed class VendorTrust(X509Certificate2Collection roots)
{
    private const int CacheSize = 100_000;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<CertificateHash, bool> _decisions = new();

    public X509Certificate2Collection Roots { get; } = roots;

    public bool IsFactoryIdentity(X509Certificate2 certificate) => IsFactoryIdentity(certificate, []);

    public bool IsFactoryIdentity(X509Certificate2 certificate, X509Certificate2Collection intermediates)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var hash = CertificateHash.Of(certificate);
        if (_decisions.TryGetValue(hash, out var trusted))
        {
            return trusted && certificate.NotAfter.ToUniversalTime() > DateTime.UtcNow;
        }

        trusted = Roots.Cast<X509Certificate2>().Any(root => Chains(certificate, root, intermediates));
        if (_decisions.Count >= CacheSize)
        {
            _decisions.Clear();
        }

        _decisions[hash] = trusted;
        return trusted;
    }

    private static bool Chains(X509Certificate2 certificate, X509Certificate2 root, X509Certificate2Collection intermediates)
    {
        using var chain = new X509Chain { ChainPolicy = TrustPolicies.CustomRoots([root]) };
        chain.ChainPolicy.ExtraStore.AddRange(intermediates);
        return chain.Build(certificate);
    }
}
