using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Attestation.Signing;
using KtZeroTrust.Attestation.Verification;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Hosting.Decisions;
using KtZeroTrust.Hosting.Problems;
using KtZeroTrust.Pki.Certificates;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Cmp;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Cmp;
using Org.BouncyCastle.Crypto.Operators;
using BcCertificate = Org.BouncyCastle.X509.X509Certificate;

namespace KtZeroTrust.Attestation.Cmp;

/// <summary>
/// CMPv2 (RFC 4210, RFC 9480) over HTTP (RFC 6712) at <see cref="Path"/> on the enrollment listener, as the Lightweight
/// CMP Profile (RFC 9483) shapes it. Every request is checked before its body is looked at: pvno 2 or 3, a signature
/// protection (ECDSA or RSA with SHA-256 or stronger; MD5, SHA-1 and shared-secret MACs refused, TS 33.310 6.1.1) by a
/// certificate that chains to a vendor root (an IDevID) or to the operator CA (an LDevID), verified; only a general
/// message may come unprotected. Every answer is signed by the operator's CMP RA certificate (<see cref="CmpSigner"/>,
/// chained to the operator CA) with the request's transaction id and nonce; every refusal is a CMP error message whose
/// status text starts with our reason code; every message is a decision.
/// Served so far: <c>genm</c> (the operator CA certificates, id-it-caCerts). Certificate requests (ir, cr, p10cr, kur,
/// rr) are refused with <c>cmp_request_unsupported</c> until they are: units enroll over EST meanwhile.
/// </summary>
public sealed partial class CmpServer(
    CertificateAuthority operatorCa,
    CmpSigner signer,
    VendorTrust vendors,
    DecisionRecorder recorder,
    IOptions<AttestationOptions> options,
    TimeProvider timeProvider,
    ILogger<CmpServer> logger)
{
    public const string Path = "/.well-known/cmp";
    private const string MediaType = "application/pkixcmp";

    /// <summary>Signature algorithms a request may be protected with (ECDSA and RSA, SHA-256 or stronger).</summary>
    private static readonly HashSet<string> SignatureAlgorithms =
    [
        "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4", // ecdsa-with-SHA256/384/512
        "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13", // sha256/384/512WithRSAEncryption
    ];

    private readonly BcCertificate _operatorCa = new(operatorCa.Certificate.RawData);

    public async Task HandleAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var start = timeProvider.GetTimestamp();
        if (!string.Equals(context.Request.ContentType?.Split(';')[0].Trim(), MediaType, StringComparison.OrdinalIgnoreCase))
        {
            await RefuseHttpAsync(context, start, ReasonCode.UnsupportedMediaType, StatusCodes.Status415UnsupportedMediaType, $"A CMP message is sent as {MediaType} (RFC 6712).");
            return;
        }

        var der = await RequestBodies.ReadAsync(context.Request, options.Value.MaxBodyBytes, context.RequestAborted);
        if (der is null)
        {
            await RefuseHttpAsync(context, start, ReasonCode.PayloadTooLarge, StatusCodes.Status413PayloadTooLarge, $"A CMP message is at most {options.Value.MaxBodyBytes} bytes.");
            return;
        }

        PkiMessage? request = null;
        CmpAnswer answer;
        try
        {
            request = PkiMessage.GetInstance(Asn1Object.FromByteArray(der));
            answer = Decide(request);
        }
        catch (Exception ex) when (ex is IOException or FormatException or ArgumentException or InvalidCastException or InvalidOperationException or Asn1Exception)
        {
            answer = CmpAnswer.Refused(ReasonCode.RequestMalformed, PkiFailureInfo.BadDataFormat, "not a DER PKIMessage");
        }

        recorder.Record(context, recorder.Make.Enrollment(DecisionKind.Enrollment, answer.Reason, answer.Subject,
            recorder.Origin(context, "cmp:" + answer.Kind, start), answer.CertificateHash, "cmp " + answer.Kind + ": " + answer.Detail));
        if (answer.Reason != ReasonCode.Allowed)
        {
            LogRefused(logger, ReasonCodes.Name(answer.Reason), answer.Kind, answer.Subject, answer.Detail);
        }

        context.Response.StatusCode = StatusCodes.Status200OK; // RFC 6712 3.3: a CMP error is a CMP message, sent with 200
        context.Response.ContentType = MediaType;
        context.Response.Headers.CacheControl = "no-store";
        await context.Response.Body.WriteAsync(Respond(request, answer), context.RequestAborted);
    }

    private CmpAnswer Decide(PkiMessage request)
    {
        var header = request.Header;
        var kind = KindOf(request.Body.Type);
        if (header.Pvno.IntValueExact is not (2 or 3))
        {
            return CmpAnswer.Refused(ReasonCode.RequestMalformed, PkiFailureInfo.UnsupportedVersion, $"pvno {header.Pvno} (2 or 3)", kind);
        }

        string? subject = null;
        string? hash = null;
        if (header.ProtectionAlg is null || request.Protection is null)
        {
            if (request.Body.Type != PkiBody.TYPE_GEN_MSG)
            {
                return CmpAnswer.Refused(ReasonCode.CmpProtectionInvalid, PkiFailureInfo.NotAuthorized, "unprotected: only a general message may be; sign it with the unit's IDevID or LDevID", kind);
            }
        }
        else
        {
            var algorithm = header.ProtectionAlg.Algorithm.Id;
            if (!SignatureAlgorithms.Contains(algorithm))
            {
                return CmpAnswer.Refused(ReasonCode.CmpAlgorithmNotAllowed, PkiFailureInfo.BadAlg,
                    $"protection {algorithm}: only a signature with SHA-256 or stronger (no MD5, SHA-1 or shared-secret MAC)", kind);
            }

            var protectedMessage = new ProtectedPkiMessage(request);
            var certificates = protectedMessage.GetCertificates();
            if (certificates.Length == 0)
            {
                return CmpAnswer.Refused(ReasonCode.CmpProtectionInvalid, PkiFailureInfo.SignerNotTrusted, "signed, but the signer's certificate is not in extraCerts", kind);
            }

            var signerCertificate = certificates[0];
            using var dotnet = X509CertificateLoader.LoadCertificate(signerCertificate.GetEncoded());
            subject = DeviceCertificates.SerialOf(dotnet);
            hash = Core.Certificates.CertificateHash.Of(dotnet).ToString();
            if (!protectedMessage.Verify(new Asn1VerifierFactory(header.ProtectionAlg, signerCertificate.GetPublicKey())))
            {
                return CmpAnswer.Refused(ReasonCode.CmpProtectionInvalid, PkiFailureInfo.BadMessageCheck, "the signature does not verify", kind, subject, hash);
            }

            var intermediates = new X509Certificate2Collection(certificates.Skip(1).Select(c => X509CertificateLoader.LoadCertificate(c.GetEncoded())).ToArray());
            if (!vendors.IsFactoryIdentity(dotnet, intermediates) && !IssuedByOperatorCa(signerCertificate))
            {
                return CmpAnswer.Refused(ReasonCode.CmpProtectionInvalid, PkiFailureInfo.SignerNotTrusted, "the signer is neither a unit's factory identity nor an operator certificate", kind, subject, hash);
            }
        }

        return request.Body.Type switch
        {
            PkiBody.TYPE_GEN_MSG => General(GenMsgContent.GetInstance(request.Body.Content), subject, hash),
            _ => CmpAnswer.Refused(ReasonCode.CmpRequestUnsupported, PkiFailureInfo.BadRequest, $"{kind} is not served yet: enroll over EST ({EndpointsInfo.Est})", kind, subject, hash),
        };
    }

    /// <summary>genm: what the unit asks for; id-it-caCerts (or nothing named) gets the operator CA certificate.</summary>
    private CmpAnswer General(GenMsgContent content, string? subject, string? hash)
    {
        var asked = content.ToInfoTypeAndValueArray();
        var wanted = asked.Length == 0 || asked.Any(i => i.InfoType.Equals(CmpObjectIdentifiers.id_it_caCerts));
        if (!wanted)
        {
            return CmpAnswer.Refused(ReasonCode.CmpRequestUnsupported, PkiFailureInfo.BadRequest,
                $"info type {string.Join(", ", asked.Select(i => i.InfoType.Id))}: only id-it-caCerts (1.3.6.1.5.5.7.4.17) is answered", "genm", subject, hash);
        }

        var caCerts = new InfoTypeAndValue(CmpObjectIdentifiers.id_it_caCerts, new DerSequence(new CmpCertificate(_operatorCa.CertificateStructure)));
        return new CmpAnswer(ReasonCode.Allowed, "genm", subject, hash, "the operator CA certificate", new PkiBody(PkiBody.TYPE_GEN_REP, new GenRepContent(caCerts)));
    }

    private bool IssuedByOperatorCa(BcCertificate certificate)
    {
        try
        {
            certificate.Verify(_operatorCa.GetPublicKey());
            return certificate.IsValidNow;
        }
        catch (Exception ex) when (ex is Org.BouncyCastle.Security.InvalidKeyException or Org.BouncyCastle.Security.Certificates.CertificateException or Org.BouncyCastle.Security.SignatureException)
        {
            return false;
        }
    }

    /// <summary>The signed response: the answer's body, or an error message with our reason code first in its text.</summary>
    private byte[] Respond(PkiMessage? request, CmpAnswer answer)
    {
        var now = timeProvider.GetUtcNow();
        var (certificate, key) = signer.Current(now);
        var body = answer.Body ?? new PkiBody(PkiBody.TYPE_ERROR, new ErrorMsgContent(new PkiStatusInfo(2 /* rejection */,
            new PkiFreeText($"{ReasonCodes.Name(answer.Reason)}: {answer.Detail}"), new PkiFailureInfo(answer.FailInfo))));
        var recipient = request?.Header.Sender ?? new GeneralName(new X509Name([], []));
        var builder = new ProtectedPkiMessageBuilder(request?.Header.Pvno.IntValueExact is 3 ? 3 : 2, new GeneralName(certificate.SubjectDN), recipient)
            .SetMessageTime(now.UtcDateTime)
            .SetSenderNonce(RandomNumberGenerator.GetBytes(16))
            .SetBody(body)
            .AddCmpCertificate(certificate)
            .AddCmpCertificate(_operatorCa);
        if (request?.Header.TransactionID is { } transaction)
        {
            builder.SetTransactionId(transaction.GetOctets());
        }

        if (request?.Header.SenderNonce is { } nonce)
        {
            builder.SetRecipNonce(nonce.GetOctets());
        }

        return builder.Build(new Asn1SignatureFactory("SHA256WITHECDSA", key)).ToAsn1Message().GetEncoded();
    }

    private static string KindOf(int type) => type switch
    {
        PkiBody.TYPE_INIT_REQ => "ir",
        PkiBody.TYPE_CERT_REQ => "cr",
        PkiBody.TYPE_P10_CERT_REQ => "p10cr",
        PkiBody.TYPE_KEY_UPDATE_REQ => "kur",
        PkiBody.TYPE_REVOCATION_REQ => "rr",
        PkiBody.TYPE_CERT_CONFIRM => "certConf",
        PkiBody.TYPE_GEN_MSG => "genm",
        PkiBody.TYPE_ERROR => "error",
        _ => $"body {type}",
    };

    private async Task RefuseHttpAsync(HttpContext context, long start, ReasonCode reason, int status, string detail)
    {
        var decision = recorder.Make.Enrollment(DecisionKind.Enrollment, reason, null, recorder.Origin(context, "cmp", start), detail: "cmp: " + detail);
        recorder.Record(context, decision);
        await ProblemResponses.WriteDenialAsync(context, status, reason, decision.Id, detail);
    }

    [LoggerMessage(EventId = AttestationEventIds.CmpRefused, Level = LogLevel.Information, Message = "CMP {Kind} refused: {Reason} (unit {Subject}): {Detail}")]
    private static partial void LogRefused(ILogger logger, string reason, string kind, string? subject, string detail);
}

/// <summary>What a CMP request came to: its reason, and the body to answer with (null: an error message).</summary>
internal sealed record CmpAnswer(ReasonCode Reason, string Kind, string? Subject, string? CertificateHash, string Detail, PkiBody? Body, int FailInfo = 0)
{
    public static CmpAnswer Refused(ReasonCode reason, int failInfo, string detail, string kind = "message", string? subject = null, string? hash = null)
        => new(reason, kind, subject, hash, detail, null, failInfo);
}

internal static class EndpointsInfo
{
    public const string Est = "/.well-known/est/simpleenroll";
}
