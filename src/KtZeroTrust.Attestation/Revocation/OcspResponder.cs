using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Attestation.Signing;
using KtZeroTrust.Hosting.Decisions;
using KtZeroTrust.Hosting.Problems;
using KtZeroTrust.Pki.Certificates;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Ocsp;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Ocsp;
using BcCertificate = Org.BouncyCastle.X509.X509Certificate;

namespace KtZeroTrust.Attestation.Revocation;

/// <summary>
/// The OCSP responder (RFC 6960) for the operator CA's device certificates, at <see cref="Path"/> (POST, and GET with
/// the request in the path). Each answer is read from the registry at the moment it is asked, so a revocation or a
/// suspension shows in the very next response: good for an active device's current certificate; revoked for a
/// revoked or superseded certificate, a revoked or decommissioned device, and (certificateHold, lifted on resume) a
/// suspended or not yet enrolled one; unknown for anything the operator CA did not issue. Nothing is cached here, and
/// nextUpdate is a couple of seconds ahead (<see cref="AttestationOptions.OcspValidity"/>) so that caching clients ask again. Responses are signed by a delegated responder certificate
/// (<see cref="OcspSigner"/>). Every request is a decision with the asking client (the SeGW) as subject.
/// </summary>
public sealed partial class OcspResponder(
    IDeviceRegistry registry,
    CertificateAuthority operatorCa,
    OcspSigner signer,
    DecisionRecorder recorder,
    IOptions<AttestationOptions> options,
    TimeProvider timeProvider,
    ILogger<OcspResponder> logger)
{
    public const string Path = "/ocsp";
    private const string RequestMediaType = "application/ocsp-request";
    private const string ResponseMediaType = "application/ocsp-response";
    private const int MaxCertificatesPerRequest = 16;

    private readonly BcCertificate _issuer = new(operatorCa.Certificate.RawData);

    public async Task HandleAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var start = timeProvider.GetTimestamp();
        byte[]? der;
        if (HttpMethods.IsPost(context.Request.Method))
        {
            if (!RequestBodies.HasMediaType(context.Request, RequestMediaType))
            {
                await RefuseAsync(context, start, ReasonCode.UnsupportedMediaType, StatusCodes.Status415UnsupportedMediaType, $"An OCSP request is sent as {RequestMediaType}.");
                return;
            }

            der = await RequestBodies.ReadAsync(context.Request, options.Value.MaxBodyBytes, context.RequestAborted);
            if (der is null)
            {
                await RefuseAsync(context, start, ReasonCode.PayloadTooLarge, StatusCodes.Status413PayloadTooLarge, $"An OCSP request is at most {options.Value.MaxBodyBytes} bytes.");
                return;
            }
        }
        else
        {
            der = FromGetPath(context);
        }

        var (status, reason, detail, response) = await AnswerAsync(der, context.RequestAborted);
        recorder.Record(context, recorder.Make.Access(DecisionListener.Enrollment, reason, context.Connection.RemoteIpAddress?.ToString(),
            recorder.Origin(context, "ocsp", start), detail: detail));
        if (reason != ReasonCode.Allowed)
        {
            LogAnswered(logger, ReasonCodes.Name(reason), context.Connection.RemoteIpAddress?.ToString(), detail);
        }

        context.Response.StatusCode = StatusCodes.Status200OK; // an OCSP error is an OCSP response, not an HTTP error
        context.Response.ContentType = ResponseMediaType;
        context.Response.Headers.CacheControl = "no-store"; // the next request must see the next revocation
        await context.Response.Body.WriteAsync(new OCSPRespGenerator().Generate(status, response).GetEncoded(), context.RequestAborted);
    }

    /// <summary>The OCSP response status, the decision's reason and detail, and the signed basic response (when successful).</summary>
    private async Task<(int Status, ReasonCode Reason, string Detail, BasicOcspResp? Response)> AnswerAsync(byte[]? der, CancellationToken cancellationToken)
    {
        OcspReq request;
        Req[] items;
        try
        {
            request = new OcspReq(der ?? throw new FormatException("no request in the path"));
            items = request.GetRequestList();
        }
        catch (Exception ex) when (RequestBodies.IsUndecodable(ex))
        {
            return (OCSPRespGenerator.MalformedRequest, ReasonCode.RequestMalformed, $"ocsp: malformed request ({ex.GetType().Name})", null);
        }

        if (items.Length is 0 or > MaxCertificatesPerRequest)
        {
            return (OCSPRespGenerator.MalformedRequest, ReasonCode.RequestMalformed, $"ocsp: {items.Length} certificates asked about (1 to {MaxCertificatesPerRequest})", null);
        }

        var now = timeProvider.GetUtcNow();
        DateTime? nextUpdate = options.Value.OcspValidity > TimeSpan.Zero ? (now + options.Value.OcspValidity).UtcDateTime : null;
        var (signerCertificate, signature) = signer.Current(now);
        var generator = new BasicOcspRespGenerator(new RespID(signerCertificate.GetPublicKey()));
        var first = ReasonCode.Allowed;
        var details = new List<string>(items.Length);
        foreach (var item in items)
        {
            var id = item.GetCertID();
            (CertificateStatus? status, ReasonCode reason, string what) answer;
            try
            {
                answer = await StatusOfAsync(id, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // The registry is away: say "try later", never "good" (fail closed).
                LogRegistryFailed(logger, ex);
                return (OCSPRespGenerator.TryLater, ReasonCode.AllowListUnavailable, "ocsp: the registry did not answer", null);
            }

            generator.AddResponse(id, answer.status, now.UtcDateTime, nextUpdate, null);
            first = first == ReasonCode.Allowed ? answer.reason : first;
            details.Add(answer.what);
        }

        if (request.GetExtension(OcspObjectIdentifiers.PkixOcspNonce) is { } nonce)
        {
            var extensions = new X509ExtensionsGenerator();
            extensions.AddExtension(OcspObjectIdentifiers.PkixOcspNonce, false, nonce.Value.GetOctets());
            generator.SetResponseExtensions(extensions.Generate());
        }

        var basic = generator.Generate(signature, [signerCertificate], now.UtcDateTime);
        return (OCSPRespGenerator.Successful, first, "ocsp: " + string.Join("; ", details), basic);
    }

    private async Task<(CertificateStatus? Status, ReasonCode Reason, string What)> StatusOfAsync(CertificateID id, CancellationToken cancellationToken)
    {
        var serialHex = Convert.ToHexString(id.SerialNumber.ToByteArray());
        if (!id.MatchesIssuer(_issuer))
        {
            return (new UnknownStatus(), ReasonCode.DeviceUnknown, $"serial {serialHex}: another issuer, unknown");
        }

        if (await registry.FindCertificateBySerialNumberAsync(serialHex, cancellationToken) is not { } standing)
        {
            return (new UnknownStatus(), ReasonCode.DeviceUnknown, $"serial {serialHex}: not issued here, unknown");
        }

        var (certificate, state) = (standing.Certificate, standing.DeviceState);
        var device = $"{certificate.DeviceSerial} (serial {serialHex})";
        if (certificate.RevokedAt is { } revokedAt)
        {
            var superseded = certificate.RevocationReason == "superseded";
            return (Revoked(revokedAt, superseded ? CrlReason.Superseded : state == DeviceLifecycleState.Decommissioned ? CrlReason.CessationOfOperation : null),
                ReasonCode.CertificateRevoked, $"{device}: revoked ({certificate.RevocationReason ?? "revoked"})");
        }

        return state switch
        {
            DeviceLifecycleState.Active => (CertificateStatus.Good, ReasonCode.Allowed, $"{device}: good"),
            DeviceLifecycleState.Suspended => (Revoked(standing.DeviceUpdatedAt, CrlReason.CertificateHold), ReasonCode.DeviceSuspended, $"{device}: on hold (suspended)"),
            DeviceLifecycleState.Provisioned => (Revoked(standing.DeviceUpdatedAt, CrlReason.CertificateHold), ReasonCode.DeviceNotEnrolled, $"{device}: on hold (not enrolled)"),
            DeviceLifecycleState.Decommissioned => (Revoked(standing.DeviceUpdatedAt, CrlReason.CessationOfOperation), ReasonCode.DeviceDecommissioned, $"{device}: revoked (decommissioned)"),
            _ => (Revoked(standing.DeviceUpdatedAt, null), ReasonCode.DeviceRevoked, $"{device}: revoked"),
        };
    }

    /// <summary>A revoked status; without a reason when there is none to give (RFC 5280: absent rather than unspecified).</summary>
    private static RevokedStatus Revoked(DateTimeOffset at, int? reason)
        => new(new RevokedInfo(new Asn1GeneralizedTime(at.UtcDateTime), reason is { } r ? new CrlReason(r) : null));

    /// <summary>RFC 6960 A.1: GET {url}/{url-encoded base64 of the DER request}. Read from the raw target: base64 has '/' and '+'.</summary>
    private static byte[]? FromGetPath(HttpContext context)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? context.Request.Path.Value ?? "";
        var query = raw.IndexOf('?', StringComparison.Ordinal);
        raw = query >= 0 ? raw[..query] : raw;
        var at = raw.IndexOf(Path + "/", StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        try
        {
            return Convert.FromBase64String(Uri.UnescapeDataString(raw[(at + Path.Length + 1)..]));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private async Task RefuseAsync(HttpContext context, long start, ReasonCode reason, int status, string detail)
    {
        var decision = recorder.Make.Access(DecisionListener.Enrollment, reason, context.Connection.RemoteIpAddress?.ToString(), recorder.Origin(context, "ocsp", start), detail: "ocsp: " + detail);
        recorder.Record(context, decision);
        await ProblemResponses.WriteDenialAsync(context, status, reason, decision.Id, detail);
    }

    [LoggerMessage(EventId = AttestationEventIds.OcspAnswered, Level = LogLevel.Information, Message = "OCSP {Reason} for {Client}: {Detail}")]
    private static partial void LogAnswered(ILogger logger, string reason, string? client, string detail);

    [LoggerMessage(EventId = AttestationEventIds.OcspRegistryFailed, Level = LogLevel.Error, Message = "OCSP: the registry did not answer; tryLater sent")]
    private static partial void LogRegistryFailed(ILogger logger, Exception exception);
}
