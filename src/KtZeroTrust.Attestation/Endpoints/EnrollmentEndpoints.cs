using KtZeroTrust.Attestation.Admission;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using KtZeroTrust.Attestation.Enrollment;
using KtZeroTrust.Attestation.Cmp;
using KtZeroTrust.Attestation.Nonces;
using KtZeroTrust.Attestation.Revocation;
using KtZeroTrust.Attestation.Verification;
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Hosting.Decisions;
using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Hosting.Problems;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.Est;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Attestation.Endpoints;

/// <summary>
/// Attestation (<c>/attest/nonce</c>, <c>/attest/evidence</c>), EST (RFC 7030, <c>/.well-known/est/</c>) and the CRL.
/// Every refusal is a problem+json with its reason code and a decision; nothing here answers 500 to bad input.
/// </summary>
public static class EnrollmentEndpoints
{
    public const string EstPrefix = "/.well-known/est";
    public const string CrlPath = "/crl/operator-ca.crl";

    public static RouteGroupBuilder MapEnrollment(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("").RequireListener(ListenerKind.Enrollment);
        group.MapPost("/attest/nonce", (HttpContext c, EnrollmentHandlers h) => h.NonceAsync(c));
        group.MapPost("/attest/evidence", (HttpContext c, EnrollmentHandlers h) => h.EvidenceAsync(c));
        group.MapGet(EstPrefix + "/cacerts", (HttpContext c, EnrollmentHandlers h) => h.CaCertsAsync(c));
        group.MapGet(EstPrefix + "/csrattrs", (HttpContext c) => EnrollmentHandlers.CsrAttrsAsync(c));
        group.MapPost(EstPrefix + "/simpleenroll", (HttpContext c, EnrollmentHandlers h) => h.EnrollAsync(c, reenroll: false));
        group.MapPost(EstPrefix + "/simplereenroll", (HttpContext c, EnrollmentHandlers h) => h.EnrollAsync(c, reenroll: true));
        group.MapGet(CrlPath, (HttpContext c, CrlPublisher crl) => crl.WriteAsync(c));
        group.MapPost(OcspResponder.Path, (HttpContext c, OcspResponder ocsp) => ocsp.HandleAsync(c));
        group.MapPost(CmpServer.Path, (HttpContext c, CmpServer cmp) => cmp.HandleAsync(c));
        group.MapPost(CmpServer.Path + "/p/{label}", (HttpContext c, CmpServer cmp) => cmp.HandleAsync(c)); // RFC 9480 3.3: the profile label names nothing else yet
        group.MapGet(OcspResponder.Path + "/{**request}", (HttpContext c, OcspResponder ocsp) => ocsp.HandleAsync(c));
        return group;
    }
}

public sealed partial class EnrollmentHandlers(
    IDeviceRegistry registry,
    INonceStore nonces,
    AttestationVerifier verifier,
    EnrollmentService enrollment,
    VendorTrust vendorTrust,
    CertificateAuthority operatorCa,
    DecisionRecorder recorder,
    EnrollmentAdmission admission,
    DeviceSites sites,
    IOptions<AttestationOptions> options,
    TimeProvider timeProvider,
    ILogger<EnrollmentHandlers> logger)
{
    private static readonly (ReasonCode Reason, string Detector)[] AlertingReasons = [(ReasonCode.KeyShared, "shared-key"), (ReasonCode.BootCounterRollback, "boot-counter")];

    // The CA does not change while the process runs: encode its certs-only answer once.
    private readonly byte[] _caCerts = EstEncoding.CertsOnly([operatorCa.Certificate]);

    public Task NonceAsync(HttpContext context) => GuardAsync(context, "attest-nonce", async () =>
    {
        var client = await ClientCertificateAsync(context)
            ?? throw new EnrollmentException(ReasonCode.ClientCertificateRequired, "Ask for a nonce over TLS with the unit's factory (IDevID) or current operational certificate.", 401);
        var serial = await IdentifyAsync(client, context.RequestAborted);
        await enrollment.RequireEnrollableAsync(serial, factoryIdentitySha256: null, context.RequestAborted); // the IDevID is compared with the evidence's signer

        var lifetime = options.Value.NonceLifetime;
        var nonce = await nonces.IssueAsync(serial, lifetime, context.RequestAborted);
        await context.Response.WriteAsJsonAsync(new NonceResponse(nonce, serial, timeProvider.GetUtcNow() + lifetime), context.RequestAborted);
        return (serial, DecisionOutcome.Allow, ReasonCode.Allowed, CertificateHash.Of(client).ToString());
    });

    public Task EvidenceAsync(HttpContext context) => GuardAsync(context, "attestation", async () =>
    {
        var client = await ClientCertificateAsync(context)
            ?? throw new EnrollmentException(ReasonCode.ClientCertificateRequired, "Post evidence over TLS with the unit's factory (IDevID) or current operational certificate.", 401);
        using var slot = await AdmitAsync(context, client, StatusCodes.Status429TooManyRequests);
        var cms = await ReadBodyAsync(context, ("application/cms", BodyEncoding.Der), ("application/pkcs7-mime", BodyEncoding.Base64));
        var outcome = await verifier.AppraiseAsync(cms, client, context.Connection.RemoteIpAddress?.ToString(), context.RequestAborted);
        var record = outcome.Record;
        if (!outcome.Passed)
        {
            LogAttestationFailed(logger, record.Serial, string.Join(',', record.Reasons));
            throw new AttestationFailedException(record.Serial, outcome.Failures);
        }

        await context.Response.WriteAsJsonAsync(new AttestationResponse("pass", record.Id, record.Serial, record.Nonce, outcome.EnrollmentToken!, record.ExpiresAt), context.RequestAborted);
        return (record.Serial, DecisionOutcome.Allow, ReasonCode.Allowed, CertificateHash.Of(client).ToString());
    });

    public Task CaCertsAsync(HttpContext context)
        => WriteBase64Async(context, "application/pkcs7-mime", _caCerts);

    public static Task CsrAttrsAsync(HttpContext context)
        => WriteBase64Async(context, "application/csrattrs", EstEncoding.CsrAttributes());

    public Task EnrollAsync(HttpContext context, bool reenroll) => GuardAsync(context, reenroll ? "est-simplereenroll" : "est-simpleenroll", async () =>
    {
        var client = await ClientCertificateAsync(context);
        using var slot = await AdmitAsync(context, client, StatusCodes.Status202Accepted); // RFC 7030 4.2.3: 202 + Retry-After
        var csr = await ReadBodyAsync(context, ("application/pkcs10", BodyEncoding.Base64));
        var (user, password) = BasicCredentials(context.Request);
        var credentials = new EnrollmentCredentials(client, user, password);
        var (certificate, serial) = await enrollment.EnrollAsync(csr, credentials, reenroll, context.RequestAborted);
        using (certificate)
        {
            context.Response.Headers["Content-Transfer-Encoding"] = "base64";
            await WriteBase64Async(context, "application/pkcs7-mime; smime-type=certs-only", EstEncoding.CertsOnly([certificate]));
            LogEnrolled(logger, serial, certificate.NotAfter.ToUniversalTime(), reenroll);
            return (serial, DecisionOutcome.Allow, ReasonCode.Allowed, CertificateHash.Of(certificate).ToString());
        }
    });

    private static async Task WriteBase64Async(HttpContext context, string contentType, byte[] der)
    {
        // A Content-Length, not chunked: strongSwan's EST client reads HTTP itself and needs the length.
        var body = Encoding.ASCII.GetBytes(EstEncoding.ToBase64Lines(der));
        context.Response.ContentType = contentType;
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body, context.RequestAborted);
    }

    /// <summary>
    /// A slot of the node's capacity within the source prefix's and the unit's site's shares, or the deferral (with its
    /// status and a spread Retry-After) when there is none.
    /// </summary>
    private async ValueTask<EnrollmentAdmission.Lease> AdmitAsync(HttpContext context, X509Certificate2? client, int status)
    {
        var site = await sites.OfAsync(client is null ? null : DeviceCertificates.SerialOf(client), context.RequestAborted);
        if (admission.TryEnter(context.Connection.RemoteIpAddress, site, out var cause) is { } lease)
        {
            return lease;
        }

        context.Response.Headers.RetryAfter = admission.RetryAfterSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        throw new EnrollmentException(ReasonCode.EnrollmentDeferred, $"{EnrollmentAdmission.Describe(cause)}: nothing was done; come back after the Retry-After seconds.", status);
    }

    /// <summary>Runs a handler; turns every refusal into a problem response, and every outcome into a decision.</summary>
    private async Task GuardAsync(HttpContext context, string route, Func<Task<(string? Subject, DecisionOutcome Outcome, ReasonCode Reason, string? CertificateHash)>> handler)
    {
        var start = timeProvider.GetTimestamp();
        string? subject = null;
        var outcome = DecisionOutcome.Deny;
        ReasonCode reason;
        string? certificateHash = null;
        IReadOnlyList<ReasonCode>? all = null;
        string? detail;
        var status = StatusCodes.Status200OK;
        try
        {
            (subject, outcome, reason, certificateHash) = await handler();
            detail = null;
        }
        catch (AttestationFailedException ex)
        {
            (subject, reason, all, detail, status) = (ex.Serial, ex.Failures[0], ex.Failures, ex.Message, StatusCodes.Status403Forbidden);
        }
        catch (EnrollmentException ex)
        {
            (reason, detail, status) = (ex.Reason, ex.Message, ex.Status);
        }
        catch (RegistryException ex)
        {
            (reason, detail, status) = (ex.Code == RegistryException.DeviceNotFound ? ReasonCode.DeviceUnknown : ReasonCode.DeviceNotEnrollable, ex.Message, StatusCodes.Status403Forbidden);
        }
        catch (Exception ex) when (StoreFailures.Is(ex))
        {
            LogStoreFailed(logger, route, ex);
            context.Response.Headers.RetryAfter = "5";
            (reason, detail, status) = (ReasonCode.DependencyUnavailable, "A store this step needs (the registry, Redis) did not answer; nothing was issued or recorded: try again.", StatusCodes.Status503ServiceUnavailable);
        }
        catch (BadHttpRequestException ex)
        {
            // Refused by the server below us (too large, too slow, malformed body): still this route's decision.
            (reason, detail, status) = (ProblemResponses.ReasonFor(ex.StatusCode), ex.Message, ex.StatusCode);
        }

        if (subject is null && await ClientCertificateAsync(context) is { } client)
        {
            subject = DeviceCertificates.SerialOf(client);
            certificateHash ??= CertificateHash.Of(client).ToString();
        }

        var origin = recorder.Origin(context, route, start);
        var kind = route.StartsWith("est-", StringComparison.Ordinal) ? DecisionKind.Enrollment : DecisionKind.Attestation;
        var decision = recorder.Make.Enrollment(kind, reason, subject, origin, certificateHash);
        recorder.Record(context, decision);
        var decisionId = decision.Id;
        // A key under a second serial is the fleet-wide credential of the incident; a boot counter going back is replayed
        // or forged evidence: alerts, not just refusals.
        foreach (var (alert, detector) in AlertingReasons)
        {
            if (reason == alert || all?.Contains(alert) == true)
            {
                recorder.Post(recorder.Make.Alert(DecisionListener.Enrollment, alert, subject,
                    new DecisionOrigin(origin.SourceAddress, Route: "detector:" + detector), detail, certificateHash));
            }
        }

        if (status != StatusCodes.Status200OK && !context.Response.HasStarted)
        {
            if (status == StatusCodes.Status401Unauthorized)
            {
                context.Response.Headers.WWWAuthenticate = "Basic realm=\"ktzerotrust-est\"";
            }

            await ProblemResponses.WriteDenialAsync(context, status, reason, decisionId, detail, all);
        }
    }

    private enum BodyEncoding
    {
        Der,
        Base64,
    }

    /// <summary>The request body, size-limited, in one of the accepted content types (415 otherwise, 400 when undecodable).</summary>
    private async Task<byte[]> ReadBodyAsync(HttpContext context, params (string ContentType, BodyEncoding Encoding)[] accepted)
    {
        var mediaType = RequestBodies.MediaType(context.Request);
        var match = accepted.FirstOrDefault(a => string.Equals(a.ContentType, mediaType, StringComparison.OrdinalIgnoreCase));
        if (match.ContentType is null)
        {
            throw new EnrollmentException(ReasonCode.UnsupportedMediaType,
                $"Content-Type '{context.Request.ContentType}' is not accepted here; send {string.Join(" or ", accepted.Select(a => a.ContentType))}.", StatusCodes.Status415UnsupportedMediaType);
        }

        var max = options.Value.MaxBodyBytes;
        var body = await RequestBodies.ReadAsync(context.Request, max, context.RequestAborted)
            ?? throw new EnrollmentException(ReasonCode.PayloadTooLarge, $"The body is larger than {max} bytes.", StatusCodes.Status413PayloadTooLarge);
        if (match.Encoding == BodyEncoding.Der)
        {
            return body;
        }

        return EstEncoding.FromBase64(Encoding.ASCII.GetString(body))
            ?? throw new EnrollmentException(match.ContentType == "application/pkcs10" ? ReasonCode.CsrMalformed : ReasonCode.EvidenceMalformed,
                "The body is not base64 (EST bodies are base64-encoded DER).");
    }

    private static async Task<X509Certificate2?> ClientCertificateAsync(HttpContext context)
        => context.Connection.ClientCertificate ?? await context.Connection.GetClientCertificateAsync(context.RequestAborted);

    /// <summary>Which unit a TLS client certificate stands for: a factory identity of a trusted vendor, or a current operational certificate.</summary>
    private async Task<string> IdentifyAsync(X509Certificate2 client, CancellationToken cancellationToken)
    {
        if (vendorTrust.IsFactoryIdentity(client) && DeviceCertificates.SerialOf(client) is { } factorySerial)
        {
            return factorySerial;
        }

        if (TrustPolicies.ChainsTo(client, operatorCa.Certificate)
            && await registry.FindAllowListEntryAsync(CertificateHash.Of(client), cancellationToken) is { CertificateRevoked: false } entry)
        {
            return entry.DeviceSerial;
        }

        throw new EnrollmentException(ReasonCode.CertificateUntrusted, "The TLS client certificate is neither a trusted factory identity nor a current operational certificate.", 403);
    }

    private static (string? User, string? Password) BasicCredentials(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return (null, null);
        }

        var decoded = EstEncoding.FromBase64(header.AsSpan(6));
        var text = decoded is null ? "" : Encoding.UTF8.GetString(decoded);
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        return colon <= 0 ? (null, null) : (text[..colon], text[(colon + 1)..]);
    }

    [LoggerMessage(EventId = AttestationEventIds.EnrollmentStoreFailed, Level = LogLevel.Error, Message = "{Route}: a store did not answer; refused with 503 dependency_unavailable")]
    private static partial void LogStoreFailed(ILogger logger, string route, Exception exception);

    [LoggerMessage(EventId = AttestationEventIds.AttestationFailed, Level = LogLevel.Warning, Message = "Attestation of {Serial} failed: {Reasons}")]
    private static partial void LogAttestationFailed(ILogger logger, string serial, string reasons);

    [LoggerMessage(EventId = AttestationEventIds.Enrolled, Level = LogLevel.Information, Message = "Enrolled {Serial}: operational certificate until {NotAfter:u} (renewal: {Renewal})")]
    private static partial void LogEnrolled(ILogger logger, string serial, DateTime notAfter, bool renewal);

    private sealed record NonceResponse(string Nonce, string Serial, DateTimeOffset ExpiresAt);

    private sealed record AttestationResponse(string Result, string AttestationId, string Serial, string Nonce, string EnrollmentToken, DateTimeOffset ExpiresAt);

    private sealed class AttestationFailedException(string serial, IReadOnlyList<ReasonCode> failures)
        : Exception($"Attestation failed: {string.Join(", ", failures.Select(ReasonCodes.Name))}.")
    {
        public string Serial { get; } = serial;

        public IReadOnlyList<ReasonCode> Failures { get; } = failures;
    }
}
