using KtZeroTrust.Attestation;
using KtZeroTrust.Attestation.Cmp;
using KtZeroTrust.Attestation.Endpoints;
using KtZeroTrust.Attestation.Enrollment;
using KtZeroTrust.Attestation.Nonces;
using KtZeroTrust.Attestation.Verification;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

public static class AttestationServiceCollectionExtensions
{
    /// <summary>
    /// Adds the Verifier and EST enrollment. The caller registers the registry, the operator
    /// <see cref="KtZeroTrust.Pki.Certificates.CertificateAuthority"/>, <see cref="VendorTrust"/> and an <see cref="IDecisionSink"/>;
    /// nonces go to Redis (<c>ZeroTrust:Attestation:Redis</c>, else the allow list's Redis) when there is one, else stay
    /// in process.
    /// </summary>
    public static IServiceCollection AddAttestation(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(AttestationOptions.SectionName);
        var redisConfiguration = section[nameof(AttestationOptions.Redis)] is { Length: > 0 } own ? own : configuration["ZeroTrust:AllowList:Redis"];
        services.AddOptions<AttestationOptions>().Bind(section)
            .Validate(o => o.NonceLifetime > TimeSpan.Zero && o.EnrollmentWindow > TimeSpan.Zero, "ZeroTrust:Attestation: NonceLifetime and EnrollmentWindow must be positive.")
            .Validate(o => o.CertificateLifetime > TimeSpan.Zero && o.CertificateLifetime <= TimeSpan.FromDays(30), "ZeroTrust:Attestation:CertificateLifetime must be positive and at most 30 days.")
            .Validate(o => o.MaxBodyBytes is >= 1024 and <= 16 * 1024 * 1024, "ZeroTrust:Attestation:MaxBodyBytes must be between 1 KiB and 16 MiB.")
            .Validate(o => o.OcspValidity >= TimeSpan.Zero && o.OcspValidity <= TimeSpan.FromHours(1), "ZeroTrust:Attestation:OcspValidity must be between 0 and 1 hour.")
            .Validate(o => o.Admission is { MaxInFlight: >= 1, PrefixShare: > 0 and <= 1, SiteShare: > 0 and <= 1, RetryAfterSeconds: >= 1 and <= 3600 },
                "ZeroTrust:Attestation:Admission: MaxInFlight at least 1, PrefixShare and SiteShare in (0, 1], RetryAfterSeconds 1 to 3600.")
            .ValidateOnStart();
        services.AddZeroTrustNode(configuration);
        if (string.IsNullOrWhiteSpace(redisConfiguration))
        {
            services.TryAddSingleton<INonceStore>(sp => new InMemoryNonceStore(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<IOptions<AttestationOptions>>().Value.MaxPendingNonces));
            services.TryAddSingleton(typeof(ICmpTransactionStore<>), typeof(InMemoryCmpTransactionStore<>));
        }
        else
        {
            services.TryAddSingleton<KtZeroTrust.Redis.RedisConnections>();
            services.TryAddSingleton<INonceStore>(sp =>
                new RedisNonceStore(sp.GetRequiredService<KtZeroTrust.Redis.RedisConnections>().Get(redisConfiguration)));
            services.TryAddSingleton<ICmpTransactionStore<CmpPending>>(sp =>
                new RedisCmpTransactionStore<CmpPending>(sp.GetRequiredService<KtZeroTrust.Redis.RedisConnections>().Get(redisConfiguration), "zt:cmp:pending:"));
            services.TryAddSingleton<ICmpTransactionStore<CmpWaiting>>(sp =>
                new RedisCmpTransactionStore<CmpWaiting>(sp.GetRequiredService<KtZeroTrust.Redis.RedisConnections>().Get(redisConfiguration), "zt:cmp:waiting:"));
        }

        services.TryAddSingleton<AttestationVerifier>();
        services.TryAddSingleton<EnrollmentService>();
        services.TryAddSingleton<CrlPublisher>();
        services.TryAddSingleton<KtZeroTrust.Attestation.Signing.OcspSigner>();
        services.TryAddSingleton<KtZeroTrust.Attestation.Signing.CmpSigner>();
        services.TryAddSingleton<KtZeroTrust.Attestation.Cmp.CmpServer>();
        services.TryAddSingleton<KtZeroTrust.Attestation.Revocation.OcspResponder>();
        services.TryAddSingleton<KtZeroTrust.Attestation.Admission.EnrollmentAdmission>();
        services.TryAddSingleton<KtZeroTrust.Attestation.Admission.DeviceSites>();
        services.AddSingleton<KtZeroTrust.Hosting.Metrics.INodeMetricSource>(sp => sp.GetRequiredService<KtZeroTrust.Attestation.Admission.EnrollmentAdmission>());
        services.TryAddSingleton<EnrollmentHandlers>();
        return services;
    }
}
