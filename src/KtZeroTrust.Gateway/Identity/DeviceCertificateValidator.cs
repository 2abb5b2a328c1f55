using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Pki.Certificates;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Gateway.Identity;

/// <summary>
/// Checks a device certificate: chain to the operator device CA, clientAuth, ECDSA key, lifetime within policy,
/// a device serial present. Results are cached by SHA-256 of the certificate (like ASP.NET Core's
/// CertificateValidationCache) until the earlier of the cache duration and the certificate's NotAfter, so a unit
/// that reconnects does not pay for the policy work again.
/// </summary>
public sealed class DeviceCertificateValidator(DeviceTrust trust, IOptions<DeviceGatewayOptions> options, TimeProvider timeProvider)
{
    private readonly ConcurrentDictionary<CertificateHash, CachedResult> _cache = new();
    private readonly DeviceGatewayOptions _options = options.Value;

    public int CachedCount => _cache.Count;

    /// <summary>
    /// Validates a certificate presented in a TLS handshake. <paramref name="tlsErrors"/> is the result of the chain
    /// SslStream already built under <see cref="DeviceTrust.CreateChainPolicy"/>, so the chain is built once per handshake.
    /// </summary>
    public CertificateValidationResult ValidateHandshake(X509Certificate2? certificate, X509Chain? chain, SslPolicyErrors tlsErrors)
    {
        if (certificate is null || tlsErrors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return CertificateValidationResult.Fail(ReasonCode.CertificateMissing, default);
        }

        var hash = CertificateHash.Of(certificate);
        var now = timeProvider.GetUtcNow();
        if ((tlsErrors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
        {
            return CertificateValidationResult.Fail(ChainFailure(certificate, now), hash);
        }

        if (chain is null || !IssuedByOperatorCa(chain))
        {
            return CertificateValidationResult.Fail(ReasonCode.CertificatePolicyViolation, hash);
        }

        return CheckPolicyCached(certificate, hash, now);
    }

    /// <summary>Validates a certificate outside a handshake: builds the chain itself against the operator CA.</summary>
    public CertificateValidationResult Validate(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var hash = CertificateHash.Of(certificate);
        var now = timeProvider.GetUtcNow();
        if (_cache.TryGetValue(hash, out var cached) && cached.ExpiresUtcTicks > now.UtcTicks)
        {
            return cached.Result;
        }

        using var chain = new X509Chain { ChainPolicy = trust.CreateChainPolicy() };
        chain.ChainPolicy.VerificationTime = now.UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        if (!chain.Build(certificate))
        {
            return CertificateValidationResult.Fail(ChainFailure(certificate, now), hash);
        }

        if (!IssuedByOperatorCa(chain))
        {
            return CertificateValidationResult.Fail(ReasonCode.CertificatePolicyViolation, hash);
        }

        return CheckPolicyCached(certificate, hash, now);
    }

    private CertificateValidationResult CheckPolicyCached(X509Certificate2 certificate, CertificateHash hash, DateTimeOffset now)
    {
        if (_cache.TryGetValue(hash, out var cached) && cached.ExpiresUtcTicks > now.UtcTicks)
        {
            return cached.Result;
        }

        var result = CheckPolicy(certificate, hash);
        if (_cache.Count >= _options.ValidationCacheSize)
        {
            // Bounded: a flood of distinct certificates empties the cache rather than growing it.
            _cache.Clear();
        }

        var expires = Math.Min(now.Add(_options.ValidationCacheDuration).UtcTicks, certificate.NotAfter.ToUniversalTime().Ticks);
        _cache[hash] = new CachedResult(result, expires);
        return result;
    }

    private CertificateValidationResult CheckPolicy(X509Certificate2 certificate, CertificateHash hash)
    {
        if (certificate.Extensions[BasicConstraintsOid] is X509BasicConstraintsExtension { CertificateAuthority: true })
        {
            return CertificateValidationResult.Fail(ReasonCode.CertificatePolicyViolation, hash); // a CA is never a device
        }

        var lifetime = certificate.NotAfter - certificate.NotBefore;
        if (lifetime > _options.MaxCertificateLifetime)
        {
            return CertificateValidationResult.Fail(ReasonCode.CertificatePolicyViolation, hash);
        }

        if (DeviceKeyPolicy.Violation(certificate.PublicKey) is not null)
        {
            return CertificateValidationResult.Fail(ReasonCode.CertificatePolicyViolation, hash); // the enrollment policy, exactly
        }

        if (!HasClientAuth(certificate))
        {
            return CertificateValidationResult.Fail(ReasonCode.CertificatePolicyViolation, hash);
        }

        var serial = DeviceCertificates.SerialOf(certificate);
        if (!Core.Devices.DeviceSerial.IsValid(serial))
        {
            return CertificateValidationResult.Fail(ReasonCode.CertificatePolicyViolation, hash);
        }

        return CertificateValidationResult.Ok(new DeviceConnectionIdentity(hash, serial!));
    }

    private static bool HasClientAuth(X509Certificate2 certificate)
    {
        foreach (var extension in certificate.Extensions)
        {
            if (extension is X509EnhancedKeyUsageExtension eku)
            {
                foreach (var oid in eku.EnhancedKeyUsages)
                {
                    if (oid.Value == "1.3.6.1.5.5.7.3.2")
                    {
                        return true;
                    }
                }

                return false;
            }
        }

        // Our CA always writes the EKU; a device certificate without one is not ours to accept.
        return false;
    }

    /// <summary>Why a chain failed: its validity window (each side its own reason), otherwise trust.</summary>
    private static ReasonCode ChainFailure(X509Certificate2 certificate, DateTimeOffset now)
        => now.UtcDateTime < certificate.NotBefore.ToUniversalTime() ? ReasonCode.CertificateNotYetValid
            : now.UtcDateTime > certificate.NotAfter.ToUniversalTime() ? ReasonCode.CertificateExpired
            : ReasonCode.CertificateUntrusted;

    /// <summary>
    /// Device certificates are end-entity certificates issued directly by an operator device CA: a chain through an
    /// intermediate (even one the operator CA signed) is not a device's.
    /// </summary>
    private bool IssuedByOperatorCa(X509Chain chain)
    {
        if (chain.ChainElements.Count != 2)
        {
            return false;
        }

        var issuer = chain.ChainElements[1].Certificate;
        foreach (var ca in trust.OperatorCas)
        {
            if (ca.RawDataMemory.Span.SequenceEqual(issuer.RawDataMemory.Span))
            {
                return true;
            }
        }

        return false;
    }

    private const string BasicConstraintsOid = "2.5.29.19";

    private readonly record struct CachedResult(CertificateValidationResult Result, long ExpiresUtcTicks);
}

public sealed class CertificateValidationResult
{
    private CertificateValidationResult(bool isValid, ReasonCode reason, CertificateHash hash, DeviceConnectionIdentity? identity)
    {
        IsValid = isValid;
        Reason = reason;
        Hash = hash;
        Identity = identity;
    }

    public bool IsValid { get; }
    public ReasonCode Reason { get; }
    public CertificateHash Hash { get; }
    public DeviceConnectionIdentity? Identity { get; }

    public static CertificateValidationResult Ok(DeviceConnectionIdentity identity)
        => new(true, ReasonCode.Allowed, identity.Hash, identity);

    public static CertificateValidationResult Fail(ReasonCode reason, CertificateHash hash) => new(false, reason, hash, null);
}
