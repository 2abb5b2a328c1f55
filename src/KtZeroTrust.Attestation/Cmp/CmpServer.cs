using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Net;
using KtZeroTrust.Attestation.Admission;
using KtZeroTrust.Attestation.Enrollment;
using KtZeroTrust.Attestation.Signing;
using KtZeroTrust.Attestation.Verification;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Hosting.Decisions;
using KtZeroTrust.Hosting.Problems;
using KtZeroTrust.Pki.Certificates;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Cmp;
using Org.BouncyCastle.Asn1.Crmf;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Cmp;
using Org.BouncyCastle.Crypto.Operators;
using BcCertificate = Org.BouncyCastle.X509.X509Certificate;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace KtZeroTrust.Attestation.Cmp;

/// <summary>
/// CMPv2 (RFC 4210, RFC 9480) over HTTP (RFC 6712) at <see cref="Path"/> on the enrollment listener, as the Lightweight
/// CMP Profile (RFC 9483) shapes it. Every request is checked before its body is looked at: pvno 2 or 3, a signature
/// protection (ECDSA or RSA with SHA-256 or stronger; MD5, SHA-1 and shared-secret MACs refused, TS 33.310 6.1.1) by a
/// certificate that chains to a vendor root (an IDevID) or to the operator CA (an LDevID), verified; only a general
/// message may come unprotected. Every answer is signed by the operator's CMP RA certificate (<see cref="CmpSigner"/>,
/// chained to the operator CA) with the request's transaction id and nonce; every refusal is a CMP error message whose
/// status text starts with our reason code; every message is a decision.
/// Served: <c>genm</c> (the operator CA certificates, id-it-caCerts); <c>ir</c> signed with the IDevID after a passing
/// attestation, and <c>kur</c> signed with the current LDevID after a fresh one, both confirmed by <c>certConf</c> (or
/// implicitly); <c>cr</c> and <c>p10cr</c> (a CRMF or PKCS#10 request) signed with either, under the same rules;
/// <c>rr</c>, a unit revoking its own certificate; <c>pollReq</c>, for a request held while the CA was at capacity.
/// </summary>
public sealed partial class CmpServer(
    CertificateAuthority operatorCa,
    CmpSigner signer,
    VendorTrust vendors,
    IDeviceRegistry registry,
    EnrollmentService enrollment,
    DecisionRecorder recorder,
    ICmpTransactionStore<CmpPending> pendingCertificates,
    ICmpTransactionStore<CmpWaiting> waitingRequests,
    EnrollmentAdmission admission,
    DeviceSites sites,
    IOptions<AttestationOptions> options,
    TimeProvider timeProvider,
    ILogger<CmpServer> logger)
{
    public const string Path = "/.well-known/cmp";
    public const string Actor = "cmp";
    private static readonly TimeSpan PendingLifetime = TimeSpan.FromMinutes(5);
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
        if (!RequestBodies.HasMediaType(context.Request, MediaType))
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
            answer = await DecideAsync(request, der, context.Connection.RemoteIpAddress, context.RequestAborted);
        }
        catch (Exception ex) when (RequestBodies.IsUndecodable(ex)) // the message, or a certificate, extension or key inside it
        {
            answer = CmpAnswer.Refused(ReasonCode.RequestMalformed, PkiFailureInfo.BadDataFormat, "not a well-formed PKIMessage (its structure, or a certificate or key inside it, does not decode)");
        }
        catch (Exception ex) when (StoreFailures.Is(ex))
        {
            // A store did not answer: nothing issued or recorded, and the unit is told to come back (fail closed).
            LogStoreFailed(logger, ex);
            answer = CmpAnswer.Refused(ReasonCode.DependencyUnavailable, PkiFailureInfo.SystemUnavail, "a store this CA needs did not answer; nothing was issued: try again");
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

    private async Task<CmpAnswer> DecideAsync(PkiMessage request, byte[] der, IPAddress? source, CancellationToken cancellationToken)
    {
        var header = request.Header;
        var kind = KindOf(request.Body.Type);
        if (header.Pvno.IntValueExact is not (2 or 3))
        {
            return CmpAnswer.Refused(ReasonCode.RequestMalformed, PkiFailureInfo.UnsupportedVersion, $"pvno {header.Pvno} (2 or 3)", kind);
        }

        // The signer's certificate (the first in extraCerts), read once: the checks below and the request handlers use it.
        using var signer = request.GetExtraCerts() is { Length: > 0 } extra ? X509CertificateLoader.LoadCertificate(extra[0].GetEncoded()) : null;
        string? subject = null;
        string? hash = null;
        var factoryIdentity = false;
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

            if (request.Protection.PadBits != 0)
            {
                // A signature is whole octets: anything else is not the DER this was signed as.
                return CmpAnswer.Refused(ReasonCode.RequestMalformed, PkiFailureInfo.BadDataFormat, "the protection BIT STRING has unused bits", kind);
            }

            var protectedMessage = new ProtectedPkiMessage(request);
            var certificates = protectedMessage.GetCertificates();
            if (signer is null)
            {
                return CmpAnswer.Refused(ReasonCode.CmpProtectionInvalid, PkiFailureInfo.SignerNotTrusted, "signed, but the signer's certificate is not in extraCerts", kind);
            }

            var signerCertificate = certificates[0];
            subject = DeviceCertificates.SerialOf(signer);
            hash = Core.Certificates.CertificateHash.Of(signer).ToString();
            using var ecdsa = signer.GetECDsaPublicKey();
            var verifier = (ecdsa is null ? null : EcdsaSignatures.Verifier(ecdsa, header.ProtectionAlg)) ?? new Asn1VerifierFactory(header.ProtectionAlg, signerCertificate.GetPublicKey());
            if (!protectedMessage.Verify(verifier))
            {
                return CmpAnswer.Refused(ReasonCode.CmpProtectionInvalid, PkiFailureInfo.BadMessageCheck, "the signature does not verify", kind, subject, hash);
            }

            var intermediates = new X509Certificate2Collection(certificates.Skip(1).Select(c => X509CertificateLoader.LoadCertificate(c.GetEncoded())).ToArray());
            factoryIdentity = vendors.IsFactoryIdentity(signer, intermediates);
            if (!factoryIdentity && !IssuedByOperatorCa(signerCertificate))
            {
                return CmpAnswer.Refused(ReasonCode.CmpProtectionInvalid, PkiFailureInfo.SignerNotTrusted, "the signer is neither a unit's factory identity nor an operator certificate", kind, subject, hash);
            }
        }

        return request.Body.Type switch
        {
            PkiBody.TYPE_GEN_MSG => General(GenMsgContent.GetInstance(request.Body.Content), subject, hash),
            _ when subject is null && request.Body.Type is not PkiBody.TYPE_CERT_CONFIRM => CmpAnswer.Refused(ReasonCode.CmpProtectionInvalid, PkiFailureInfo.NotAuthorized,
                $"a {kind} is signed by a unit: its IDevID or its operator certificate", kind),
            PkiBody.TYPE_INIT_REQ when !factoryIdentity => CmpAnswer.Refused(ReasonCode.CmpProtectionInvalid, PkiFailureInfo.NotAuthorized,
                "an ir is signed with the unit's factory identity (IDevID, TS 33.310 9.5.3)", kind, subject, hash),
            PkiBody.TYPE_KEY_UPDATE_REQ when factoryIdentity => CmpAnswer.Refused(ReasonCode.CmpProtectionInvalid, PkiFailureInfo.NotAuthorized,
                "a kur is signed with the unit's current operator certificate (LDevID), not its factory identity", kind, subject, hash),
            PkiBody.TYPE_REVOCATION_REQ when factoryIdentity => CmpAnswer.Refused(ReasonCode.CmpProtectionInvalid, PkiFailureInfo.NotAuthorized,
                "an rr is signed with the unit's current operator certificate: a unit revokes its own certificate", kind, subject, hash),
            // cr and p10cr may come either way (RFC 9483 4.1.2, 4.1.4): signed by the IDevID they enroll, by the LDevID they renew.
            PkiBody.TYPE_INIT_REQ or PkiBody.TYPE_CERT_REQ or PkiBody.TYPE_KEY_UPDATE_REQ or PkiBody.TYPE_P10_CERT_REQ
                => await AdmitAsync(request, der, source, signer!, subject!, hash!, kind, renewal: !factoryIdentity, cancellationToken),
            PkiBody.TYPE_POLL_REQ => await PollAsync(request, source, subject!, hash!, cancellationToken),
            PkiBody.TYPE_REVOCATION_REQ => await RevokeAsync(request, signer!, hash!, cancellationToken),
            PkiBody.TYPE_CERT_CONFIRM => await ConfirmAsync(request, subject, hash, cancellationToken),
            _ => CmpAnswer.Refused(ReasonCode.CmpRequestUnsupported, PkiFailureInfo.BadRequest, $"{kind} is not a request this CA serves (ir, cr, p10cr, kur, pollReq, rr, certConf, genm)", kind, subject, hash),
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

    /// <summary>
    /// ir, cr, p10cr, kur within the node's capacity (<see cref="EnrollmentAdmission"/>); beyond it the verified request
    /// is held and answered with its response type carrying status <c>waiting</c> (RFC 4210 5.3.22, RFC 9483 4.4): the
    /// unit polls with pollReq and gets pollRep with checkAfter until there is room, then the response itself.
    /// </summary>
    private async Task<CmpAnswer> AdmitAsync(PkiMessage request, byte[] der, IPAddress? source, X509Certificate2 signer, string serial, string signerHash, string kind, bool renewal, CancellationToken cancellationToken)
    {
        var site = await sites.OfAsync(serial, cancellationToken);
        DeferralCause cause;
        using (var lease = admission.TryEnter(source, site, out cause))
        {
            if (lease is not null)
            {
                return await RequestAsync(request, signer, serial, signerHash, kind, renewal, cancellationToken);
            }
        }

        if (request.Header.TransactionID is not { } transaction)
        {
            return CmpAnswer.Refused(ReasonCode.EnrollmentDeferred, PkiFailureInfo.SystemUnavail,
                "the CA is at capacity and the request has no transactionID to poll with: nothing was done, send it again later", kind, serial, signerHash);
        }

        // One held request per signer: a unit that sends another replaces it (and cannot park requests without bound).
        await waitingRequests.PutAsync(signerHash, new CmpWaiting(signerHash, Convert.ToHexString(transaction.GetOctets()), der, renewal, timeProvider.GetUtcNow() + PendingLifetime), cancellationToken);
        var body = new PkiBody(ResponseType(request.Body.Type), new CertRepMessage(null,
            [new CertResponse(new DerInteger(CertReqIdOf(request)), new PkiStatusInfo(3 /* waiting */, new PkiFreeText(EnrollmentAdmission.Describe(cause) + ": poll for the certificate")), null, null)]));
        return new CmpAnswer(ReasonCode.EnrollmentDeferred, kind, serial, signerHash, $"held (status waiting): {EnrollmentAdmission.Describe(cause)}; the unit polls with pollReq", body);
    }

    /// <summary>
    /// pollReq, signed by the unit whose request is held: when the node has room, the held request is served and its
    /// response (ip, cp or kup, with the certificate) is the answer; else pollRep with a spread checkAfter, still held.
    /// </summary>
    private async Task<CmpAnswer> PollAsync(PkiMessage poll, IPAddress? source, string subject, string signerHash, CancellationToken cancellationToken)
    {
        var transaction = Convert.ToHexString(poll.Header.TransactionID?.GetOctets() ?? []);
        var held = await waitingRequests.TakeAsync(signerHash, signerHash, cancellationToken);
        if (held is not null && held.Transaction != transaction)
        {
            await waitingRequests.PutAsync(signerHash, held, cancellationToken); // the unit's held request is another transaction's
            held = null;
        }

        if (held is null)
        {
            return CmpAnswer.Refused(ReasonCode.RequestMalformed, PkiFailureInfo.BadRequest,
                "no request of this transaction is held for this unit (never held, already served, or expired after 5 minutes): send the request again", "pollReq", subject, signerHash);
        }

        var request = PkiMessage.GetInstance(held.Request);
        var kind = KindOf(request.Body.Type);
        var certReqId = CertReqIdOf(request);
        var asked = PollReqContent.GetInstance(poll.Body.Content).GetCertReqIDs();
        if (asked.Length != 1 || asked[0].Length == 0 || !asked[0][0].Value.Equals(certReqId))
        {
            await waitingRequests.PutAsync(signerHash, held, cancellationToken);
            return CmpAnswer.Refused(ReasonCode.RequestMalformed, PkiFailureInfo.BadCertId, $"a pollReq names the held request's certReqId ({certReqId})", "pollReq", subject, signerHash);
        }

        using var lease = admission.TryEnter(source, await sites.OfAsync(subject, cancellationToken), out var cause);
        if (lease is null)
        {
            await waitingRequests.PutAsync(signerHash, held, cancellationToken);
            var after = admission.RetryAfterSeconds();
            var why = EnrollmentAdmission.Describe(cause);
            return new CmpAnswer(ReasonCode.EnrollmentDeferred, "pollReq", subject, signerHash, $"{kind} still held: {why}; poll again after {after} s",
                new PkiBody(PkiBody.TYPE_POLL_REP, new PollRepContent(new DerInteger(certReqId), DerInteger.ValueOf(after), new PkiFreeText(why))));
        }

        using var signer = X509CertificateLoader.LoadCertificate(request.GetExtraCerts()[0].GetEncoded());
        return await RequestAsync(request, signer, subject, signerHash, kind, held.Renewal, cancellationToken);
    }

    /// <summary>The id a request's response is given: the CRMF request's certReqId, or -1 for a PKCS#10 one (RFC 9480 2.11).</summary>
    private static BigInteger CertReqIdOf(PkiMessage request)
        => request.Body.Type == PkiBody.TYPE_P10_CERT_REQ
            ? BigInteger.One.Negate()
            : CertReqMessages.GetInstance(request.Body.Content).ToCertReqMsgArray() is { Length: > 0 } messages ? messages[0].CertReq.CertReqID.Value : BigInteger.Zero;

    private static int ResponseType(int requestType) => requestType switch
    {
        PkiBody.TYPE_INIT_REQ => PkiBody.TYPE_INIT_REP,
        PkiBody.TYPE_KEY_UPDATE_REQ => PkiBody.TYPE_KEY_UPDATE_REP,
        _ => PkiBody.TYPE_CERT_REP,
    };

    /// <summary>
    /// ir, cr, p10cr signed with the IDevID (a registered, enrollable unit whose manifest names that IDevID) and kur,
    /// cr, p10cr signed with the current LDevID (still on the allow list): a passing, unused attestation posted with
    /// that same certificate, one certificate request with a valid proof of possession (CRMF signature POP, or the
    /// PKCS#10 signature), the device key policy, no other unit's key or name; the certificate is issued now and
    /// recorded on certConf (or at once when the unit asks for implicit confirmation), superseding the unit's previous ones.
    /// </summary>
    private async Task<CmpAnswer> RequestAsync(PkiMessage request, X509Certificate2 signer, string serial, string signerHash, string kind, bool renewal, CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow();
        try
        {
            if (renewal)
            {
                (serial, _) = await enrollment.AuthenticateCurrentAsync(signer, now, cancellationToken);
            }
            else
            {
                await enrollment.RequireEnrollableAsync(serial, signerHash, cancellationToken);
            }
        }
        catch (Core.Attestation.EnrollmentException ex)
        {
            return CmpAnswer.Refused(ex.Reason, PkiFailureInfo.NotAuthorized, ex.Message, kind, serial, signerHash);
        }

        var (ask, refusal) = ReadAsk(request, kind, serial, signerHash);
        if (ask is null)
        {
            return refusal!;
        }

        if (ask.NamedSerial is { } named && named != serial)
        {
            return CmpAnswer.Refused(ReasonCode.CsrIdentityMismatch, PkiFailureInfo.BadCertTemplate,
                $"the request names '{named}', but its signer is '{serial}': a unit enrolls only itself", kind, serial, signerHash);
        }

        if (await registry.FindUsableAttestationByClientAsync(serial, signerHash, now, cancellationToken) is not { } attestation)
        {
            return CmpAnswer.Refused(ReasonCode.AttestationRequired, PkiFailureInfo.NotAuthorized,
                $"no passing, unused attestation of '{serial}' posted with this {(renewal ? "operator certificate" : "IDevID")} within the enrollment window: attest over /attest/* first", kind, serial, signerHash);
        }

        if (await registry.FindSerialByPublicKeyAsync(ask.PublicKeySha256, cancellationToken) is { } holder && holder != serial)
        {
            recorder.Post(recorder.Make.Alert(DecisionListener.Enrollment, ReasonCode.KeyShared, serial, DecisionOrigin.At("detector:shared-key"), $"CMP {kind} with the key of '{holder}'"));
            return CmpAnswer.Refused(ReasonCode.KeyShared, PkiFailureInfo.BadCertTemplate, $"this public key is already bound to device '{holder}': one key, one device", kind, serial, signerHash);
        }

        using var certificate = enrollment.Issue(serial, ask.Key, now); // recorded (or kept pending) by its bytes
        var implicitConfirm = request.Header.GetGeneralInfo()?.Any(i => i.InfoType.Equals(CmpObjectIdentifiers.it_implicitConfirm)) == true;
        if (implicitConfirm)
        {
            var refused = await CommitAsync(serial, attestation.Id, certificate, ask.PublicKeySha256, signerHash, kind, now, cancellationToken);
            if (refused is not null)
            {
                return refused;
            }
        }
        else
        {
            // Issued, not yet confirmed: the certificate joins the allow list only on certConf (RFC 4210 5.3.18).
            await pendingCertificates.PutAsync(Convert.ToHexString(request.Header.TransactionID?.GetOctets() ?? []),
                new CmpPending(serial, signerHash, attestation.Id, certificate.RawData, ask.PublicKeySha256, ask.CertReqId.ToString(), now + PendingLifetime), cancellationToken);
        }

        // caPubs: the operator root the unit installs as its trust anchor for the SeGW (TS 33.310 9.5.4).
        var body = new PkiBody(ResponseType(request.Body.Type), new CertRepMessage([new CmpCertificate(_operatorCa.CertificateStructure)],
            [new CertResponse(new DerInteger(ask.CertReqId), new PkiStatusInfo(0 /* accepted */), new CertifiedKeyPair(new CertOrEncCert(new CmpCertificate(X509CertificateStructure.GetInstance(certificate.RawData)))), null)]));
        return new CmpAnswer(ReasonCode.Allowed, kind, serial, signerHash,
            $"certificate {certificate.SerialNumber} until {certificate.NotAfter.ToUniversalTime():u}" + (implicitConfirm ? " (implicitly confirmed: recorded)" : " (recorded on certConf)"), body)
        { ImplicitConfirm = implicitConfirm };
    }

    /// <summary>What a request asks to be certified: the key, the serial it names, the request id to answer under.</summary>
    private sealed record CertificateAsk(PublicKey Key, string PublicKeySha256, string? NamedSerial, BigInteger CertReqId);

    private static (CertificateAsk? Ask, CmpAnswer? Refusal) ReadAsk(PkiMessage request, string kind, string serial, string signerHash)
    {
        try
        {
            if (request.Body.Type == PkiBody.TYPE_P10_CERT_REQ)
            {
                // The PKCS#10 signature is the proof of possession; certReqId -1 (RFC 9480 2.11).
                var csr = Pki.Est.CsrParser.Parse(Org.BouncyCastle.Asn1.Pkcs.CertificationRequest.GetInstance(request.Body.Content).GetEncoded());
                return (new CertificateAsk(csr.Request.PublicKey, csr.PublicKeySha256, csr.SubjectSerial, BigInteger.One.Negate()), null);
            }

            var messages = CertReqMessages.GetInstance(request.Body.Content).ToCertReqMsgArray();
            if (messages.Length != 1)
            {
                return (null, CmpAnswer.Refused(ReasonCode.RequestMalformed, PkiFailureInfo.BadRequest, $"{messages.Length} certificate requests: one per message", kind, serial, signerHash));
            }

            var message = new Org.BouncyCastle.Crmf.CertificateRequestMessage(messages[0]);
            var template = message.GetCertTemplate();
            if (template.PublicKey is null)
            {
                return (null, CmpAnswer.Refused(ReasonCode.CsrMalformed, PkiFailureInfo.BadCertTemplate, "the certificate template carries no public key", kind, serial, signerHash));
            }

            PublicKey key;
            try
            {
                key = PublicKey.CreateFromSubjectPublicKeyInfo(template.PublicKey.GetEncoded(), out _);
            }
            catch (CryptographicException)
            {
                return (null, CmpAnswer.Refused(ReasonCode.CsrMalformed, PkiFailureInfo.BadCertTemplate, "the template's public key is not readable", kind, serial, signerHash));
            }

            Pki.Est.CsrParser.CheckKey(key);
            string? named;
            try
            {
                named = template.Subject is { } subject ? Pki.Est.CsrParser.SerialNamedIn(new X500DistinguishedName(subject.GetEncoded())) : null;
            }
            catch (CryptographicException)
            {
                return (null, CmpAnswer.Refused(ReasonCode.CsrMalformed, PkiFailureInfo.BadCertTemplate, "the template's subject is not a readable name", kind, serial, signerHash));
            }

            if (!PopVerifies(message, key))
            {
                return (null, CmpAnswer.Refused(ReasonCode.CsrSignatureInvalid, PkiFailureInfo.BadPop, "the proof of possession does not verify with the template's key", kind, serial, signerHash));
            }

            return (new CertificateAsk(key, Core.Certificates.PublicKeyHash.Hex(key), named, message.GetCertReqID().Value), null);
        }
        catch (Core.Attestation.EnrollmentException ex)
        {
            return (null, CmpAnswer.Refused(ex.Reason, ex.Reason == ReasonCode.CsrSignatureInvalid ? PkiFailureInfo.BadPop : PkiFailureInfo.BadCertTemplate, ex.Message, kind, serial, signerHash));
        }
    }

    /// <summary>The proof of possession, with the key the policy admitted imported from its point (a point off its curve fails).</summary>
    private static bool PopVerifies(Org.BouncyCastle.Crmf.CertificateRequestMessage message, PublicKey key)
    {
        try
        {
            using var ecdsa = DeviceKeyPolicy.Import(key);
            return message.IsValidSigningKeyPop(EcdsaSignatures.VerifierProvider(ecdsa));
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>
    /// rr: a unit revokes its own current certificate (tamper switch, decommissioning in the field). The device is
    /// revoked in the registry, so every gateway and the OCSP responder refuse it at once; only an administrator can
    /// bring it back (a new attestation and enrollment).
    /// </summary>
    private async Task<CmpAnswer> RevokeAsync(PkiMessage request, X509Certificate2 current, string signerHash, CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow();
        string serial;
        try
        {
            (serial, _) = await enrollment.AuthenticateCurrentAsync(current, now, cancellationToken);
        }
        catch (Core.Attestation.EnrollmentException ex)
        {
            return CmpAnswer.Refused(ex.Reason, PkiFailureInfo.NotAuthorized, ex.Message, "rr", DeviceCertificates.SerialOf(current), signerHash);
        }

        var details = RevReqContent.GetInstance(request.Body.Content).ToRevDetailsArray();
        var asked = details.Length == 1 ? details[0].CertDetails.SerialNumber?.Value : null;
        if (asked is null || !asked.Equals(new BigInteger(1, Convert.FromHexString(current.SerialNumber))))
        {
            return CmpAnswer.Refused(ReasonCode.CmpRequestUnsupported, PkiFailureInfo.BadCertId, "an rr names exactly one certificate: the signer's own", "rr", serial, signerHash);
        }

        try
        {
            await registry.TransitionAsync(serial, DeviceLifecycleState.Revoked, "cmp:rr", $"the unit asked for the revocation of its certificate {current.SerialNumber}", cancellationToken);
        }
        catch (RegistryException ex)
        {
            return CmpAnswer.Refused(ReasonCode.LifecycleTransitionInvalid, PkiFailureInfo.NotAuthorized, ex.Message, "rr", serial, signerHash);
        }

        recorder.Post(recorder.Make.Lifecycle(DecisionListener.Enrollment, serial, "cmp:rr", $"revoked at the unit's own request (certificate {current.SerialNumber})"));
        var revocation = new RevRepContentBuilder().Add(new PkiStatusInfo(0 /* accepted */),
            new CertId(new GeneralName(X509Name.GetInstance(_operatorCa.SubjectDN.ToAsn1Object())), new DerInteger(asked))).Build();
        return new CmpAnswer(ReasonCode.Allowed, "rr", serial, signerHash, $"certificate {current.SerialNumber} and its device revoked", new PkiBody(PkiBody.TYPE_REVOCATION_REP, revocation));
    }

    /// <summary>certConf: the unit accepts (the hash of) the certificate it was issued; then, and only then, it is recorded.</summary>
    private async Task<CmpAnswer> ConfirmAsync(PkiMessage request, string? subject, string? hash, CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow();
        var transaction = Convert.ToHexString(request.Header.TransactionID?.GetOctets() ?? []);
        // Only the unit that made the request can confirm (or spend) it: another signer leaves it waiting.
        if (await pendingCertificates.TakeAsync(transaction, hash, cancellationToken) is not { } pending || pending.Expires < now)
        {
            return CmpAnswer.Refused(ReasonCode.AttestationRequired, PkiFailureInfo.BadRequest, "no certificate of this transaction is waiting for this unit's confirmation", "certConf", subject, hash);
        }

        var status = CertConfirmContent.GetInstance(request.Body.Content).ToCertStatusArray().FirstOrDefault();
        if (status is null || status.CertReqID.Value.ToString() != pending.CertReqId)
        {
            return CmpAnswer.Refused(ReasonCode.RequestMalformed, PkiFailureInfo.BadCertId, "certConf names no certificate of this transaction", "certConf", subject, hash);
        }

        if (status.StatusInfo is { } info && info.Status.IntValueExact != 0)
        {
            // The unit refused it: never recorded, never valid.
            return new CmpAnswer(ReasonCode.Allowed, "certConf", subject, hash, "the unit rejected its certificate: not recorded", new PkiBody(PkiBody.TYPE_CONFIRM, DerNull.Instance));
        }

        if (!CryptographicOperations.FixedTimeEquals(status.CertHash.GetOctets(), SHA256.HashData(pending.Certificate)))
        {
            return CmpAnswer.Refused(ReasonCode.RequestMalformed, PkiFailureInfo.BadCertId, "certHash is not the SHA-256 of the certificate issued", "certConf", subject, hash);
        }

        using var certificate = X509CertificateLoader.LoadCertificate(pending.Certificate);
        return await CommitAsync(pending.Serial, pending.AttestationId, certificate, pending.PublicKeySha256, hash!, "certConf", now, cancellationToken)
            ?? new CmpAnswer(ReasonCode.Allowed, "certConf", subject, hash, $"certificate {certificate.SerialNumber} confirmed and recorded", new PkiBody(PkiBody.TYPE_CONFIRM, DerNull.Instance));
    }

    /// <summary>Records the certificate (null), or the refusal the registry gave.</summary>
    private async Task<CmpAnswer?> CommitAsync(string serial, string attestationId, X509Certificate2 certificate, string spki, string signerHash, string kind, DateTimeOffset now, CancellationToken cancellationToken)
    {
        try
        {
            await enrollment.CommitAsync(serial, attestationId, certificate, spki, Actor, now, cancellationToken);
            return null;
        }
        catch (Core.Attestation.EnrollmentException ex)
        {
            return CmpAnswer.Refused(ex.Reason, PkiFailureInfo.NotAuthorized, ex.Message, kind, serial, signerHash);
        }
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
        if (answer.ImplicitConfirm)
        {
            builder.AddGeneralInfo(new InfoTypeAndValue(CmpObjectIdentifiers.it_implicitConfirm, DerNull.Instance));
        }

        if (request?.Header.TransactionID is { } transaction)
        {
            builder.SetTransactionId(transaction.GetOctets());
        }

        if (request?.Header.SenderNonce is { } nonce)
        {
            builder.SetRecipNonce(nonce.GetOctets());
        }

        return builder.Build(key).ToAsn1Message().GetEncoded();
    }

    private static string KindOf(int type) => type switch
    {
        PkiBody.TYPE_INIT_REQ => "ir",
        PkiBody.TYPE_CERT_REQ => "cr",
        PkiBody.TYPE_P10_CERT_REQ => "p10cr",
        PkiBody.TYPE_KEY_UPDATE_REQ => "kur",
        PkiBody.TYPE_REVOCATION_REQ => "rr",
        PkiBody.TYPE_CERT_CONFIRM => "certConf",
        PkiBody.TYPE_POLL_REQ => "pollReq",
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

    [LoggerMessage(EventId = AttestationEventIds.CmpStoreFailed, Level = LogLevel.Error, Message = "CMP: a store did not answer; the request was refused with systemUnavail")]
    private static partial void LogStoreFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = AttestationEventIds.CmpRefused, Level = LogLevel.Information, Message = "CMP {Kind} refused: {Reason} (unit {Subject}): {Detail}")]
    private static partial void LogRefused(ILogger logger, string reason, string kind, string? subject, string detail);
}

/// <summary>What a CMP request came to: its reason, and the body to answer with (null: an error message).</summary>
internal sealed record CmpAnswer(ReasonCode Reason, string Kind, string? Subject, string? CertificateHash, string Detail, PkiBody? Body, int FailInfo = 0)
{
    public bool ImplicitConfirm { get; init; }

    public static CmpAnswer Refused(ReasonCode reason, int failInfo, string detail, string kind = "message", string? subject = null, string? hash = null)
        => new(reason, kind, subject, hash, detail, null, failInfo);
}
