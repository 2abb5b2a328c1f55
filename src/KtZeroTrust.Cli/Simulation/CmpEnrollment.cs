using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Cmp;
using Org.BouncyCastle.Asn1.Crmf;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Cmp;
using Org.BouncyCastle.Crmf;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Operators;
using KtZeroTrust.Pki.Certificates;
using Org.BouncyCastle.Security;
using BcCertificate = Org.BouncyCastle.X509.X509Certificate;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace KtZeroTrust.Cli.Simulation;

/// <summary>
/// A base station's CMPv2 client (RFC 4210 / RFC 9483, HTTP transfer RFC 6712) as the simulator plays it: an ir
/// protected with the IDevID (TS 33.310 9.5.3) carrying a CRMF request with signature proof of possession, the ip's
/// protection checked against the operator CA, then certConf with the certificate's hash and the pkiConf awaited. An ip
/// with status <c>waiting</c> (the CA at capacity, RFC 9483 4.4) is followed by pollReq until the ip itself comes, each
/// pollRep's checkAfter waited out through <c>wait</c> (which says when the unit has waited often enough).
/// </summary>
internal sealed class CmpEnrollment(HttpClient http, Uri endpoint, X509Certificate2 operatorCaCertificate, ECDsa operatorCaKey)
{
    private readonly BcCertificate operatorCa = new(operatorCaCertificate.RawData);

    public const string MediaType = "application/pkixcmp";

    /// <summary>The issued certificate, or the step's refusal (the reason code is the head of the CMP status text).</summary>
    /// <remarks>An ir signed with the IDevID, or with <paramref name="renewal"/> a kur signed with the current certificate.</remarks>
    public async Task<(StepResult Result, X509Certificate2? Certificate)> EnrollAsync(string serial, X509Certificate2 signedWith, ECDsa key, Func<TimeSpan, CancellationToken, Task<bool>> wait, CancellationToken ct, bool renewal = false)
    {
        ArgumentNullException.ThrowIfNull(signedWith);
        ArgumentNullException.ThrowIfNull(wait);
        var (requestType, responseType) = renewal ? (PkiBody.TYPE_KEY_UPDATE_REQ, PkiBody.TYPE_KEY_UPDATE_REP) : (PkiBody.TYPE_INIT_REQ, PkiBody.TYPE_INIT_REP);
        var signer = new BcCertificate(signedWith.RawData);
        using var signingKey = signedWith.GetECDsaPrivateKey() ?? throw new InvalidOperationException($"{serial}'s signing certificate has no ECDSA key.");
        var signerKey = EcdsaSignatures.Signer(signingKey);
        var transaction = RandomNumberGenerator.GetBytes(16);

        var request = new CertificateRequestMessageBuilder(BigInteger.Zero)
            .SetSubjectPublicKeyInfo(SubjectPublicKeyInfo.GetInstance(key.ExportSubjectPublicKeyInfo()))
            .SetSubject(new X509Name("CN=" + serial))
            .SetProofOfPossessionSignKeySigner(EcdsaSignatures.Signer(key))
            .Build();
        var (ir, irNonce) = Build(signer, signerKey, transaction, null, new PkiBody(requestType, new CertReqMessages(request.ToAsn1Structure())));
        var (ip, refusal) = await ExchangeAsync(ir, transaction, irNonce, responseType, ct);
        // Held (status waiting): poll until the response itself comes; a pollRep first says how long to wait.
        var held = ip is null ? null : WaitingFor(ip);
        while (held is not null && ip is not null && (ip.Body.Type == PkiBody.TYPE_POLL_REP || WaitingFor(ip) is not null))
        {
            if (ip.Body.Type == PkiBody.TYPE_POLL_REP && !await wait(TimeSpan.FromSeconds(PollRepContent.GetInstance(ip.Body.Content).GetCheckAfter(0).IntValueExact), ct))
            {
                return (new StepResult(HttpStatusCode.Accepted, "enrollment_deferred", default), null); // polled more often than a unit waits
            }

            var (poll, pollNonce) = Build(signer, signerKey, transaction, ip.Header.SenderNonce?.GetOctets(), new PkiBody(PkiBody.TYPE_POLL_REQ, new PollReqContent(held)));
            (ip, refusal) = await ExchangeAsync(poll, transaction, pollNonce, responseType, ct);
        }

        if (ip is null)
        {
            return (refusal!, null);
        }

        var response = CertRepMessage.GetInstance(ip.Body.Content).GetResponse()[0];
        if (response.Status.Status.IntValueExact != 0 || response.CertifiedKeyPair?.CertOrEncCert.Certificate is not { } issued)
        {
            return (new StepResult(HttpStatusCode.Forbidden, Reason(response.Status), default), null);
        }

        var certificate = X509CertificateLoader.LoadCertificate(issued.GetEncoded());
        var status = new CertStatus(SHA256.HashData(certificate.RawData), response.CertReqID.Value);
        var (certConf, confNonce) = Build(signer, signerKey, transaction, ip.Header.SenderNonce?.GetOctets(),
            new PkiBody(PkiBody.TYPE_CERT_CONFIRM, CertConfirmContent.GetInstance(new DerSequence(status))));
        var (_, unconfirmed) = await ExchangeAsync(certConf, transaction, confNonce, PkiBody.TYPE_CONFIRM, ct);
        if (unconfirmed is not null)
        {
            certificate.Dispose();
            return (unconfirmed, null);
        }

        return (new StepResult(HttpStatusCode.OK, null, default), certificate);
    }

    /// <summary>The certReqId of a response whose request is held (status waiting), else null.</summary>
    private static BigInteger? WaitingFor(PkiMessage answer)
        => answer.Body.Type != PkiBody.TYPE_POLL_REP && CertRepMessage.GetInstance(answer.Body.Content).GetResponse()[0] is { Status.Status.IntValueExact: 3 } waiting
            ? waiting.CertReqID.Value
            : null;

    private (byte[] Der, byte[] Nonce) Build(BcCertificate signer, ISignatureFactory signerKey, byte[] transaction, byte[]? recipientNonce, PkiBody body)
    {
        var nonce = RandomNumberGenerator.GetBytes(16);
        var builder = new ProtectedPkiMessageBuilder(2, new GeneralName(signer.SubjectDN), new GeneralName(operatorCa.SubjectDN))
            .SetTransactionId(transaction)
            .SetSenderNonce(nonce)
            .SetMessageTime(DateTime.UtcNow)
            .SetBody(body)
            .AddCmpCertificate(signer);
        if (recipientNonce is not null)
        {
            builder.SetRecipNonce(recipientNonce);
        }

        return (builder.Build(signerKey).ToAsn1Message().GetEncoded(), nonce);
    }

    /// <summary>Sends one message; the answer only if it is the expected type, protected by an RA under the operator CA, for this transaction and nonce.</summary>
    private async Task<(PkiMessage? Answer, StepResult? Refusal)> ExchangeAsync(byte[] der, byte[] transaction, byte[] nonce, int expected, CancellationToken ct)
    {
        using var content = new ByteArrayContent(der);
        content.Headers.ContentType = new MediaTypeHeaderValue(MediaType);
        byte[] body;
        try
        {
            using var response = await http.PostAsync(endpoint, content, ct);
            body = await response.Content.ReadAsByteArrayAsync(ct);
            if (response.StatusCode != HttpStatusCode.OK || response.Content.Headers.ContentType?.MediaType != MediaType)
            {
                return (null, new StepResult(response.StatusCode, "cmp_http_" + (int)response.StatusCode, default));
            }
        }
        catch (HttpRequestException ex)
        {
            return (null, new StepResult(0, "connection_refused:" + ex.HttpRequestError, default));
        }

        PkiMessage answer;
        try
        {
            answer = PkiMessage.GetInstance(Asn1Object.FromByteArray(body));
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or InvalidCastException)
        {
            return (null, new StepResult(HttpStatusCode.BadGateway, "cmp_answer_malformed", default));
        }

        if (!Trusted(answer) || answer.Header.TransactionID?.GetOctets() is not { } tid || !tid.AsSpan().SequenceEqual(transaction)
            || answer.Header.RecipNonce?.GetOctets() is not { } echoed || !echoed.AsSpan().SequenceEqual(nonce))
        {
            return (null, new StepResult(HttpStatusCode.BadGateway, "cmp_answer_untrusted", default));
        }

        if (answer.Body.Type == PkiBody.TYPE_ERROR)
        {
            return (null, new StepResult(HttpStatusCode.Forbidden, Reason(ErrorMsgContent.GetInstance(answer.Body.Content).PkiStatusInfo), default));
        }

        // A pollRep may stand in for the expected answer while a request is held (RFC 4210 5.3.22).
        return answer.Body.Type == expected || answer.Body.Type == PkiBody.TYPE_POLL_REP ? (answer, null) : (null, new StepResult(HttpStatusCode.BadGateway, $"cmp_unexpected_body_{answer.Body.Type}", default));
    }

    private bool Trusted(PkiMessage answer)
    {
        var protectedMessage = new ProtectedPkiMessage(answer);
        if (answer.Header.ProtectionAlg is null || answer.Protection is null || protectedMessage.HasPasswordBasedMacProtected
            || protectedMessage.GetCertificates() is not { Length: > 0 } certificates)
        {
            return false;
        }

        try
        {
            using var ra = X509CertificateLoader.LoadCertificate(certificates[0].GetEncoded());
            using var raKey = ra.GetECDsaPublicKey();
            return certificates[0].IsSignatureValid(EcdsaSignatures.VerifierProvider(operatorCaKey))
                && raKey is not null && EcdsaSignatures.Verifier(raKey, answer.Header.ProtectionAlg) is { } verifier && protectedMessage.Verify(verifier);
        }
        catch (Exception ex) when (ex is InvalidOperationException or CryptographicException or Org.BouncyCastle.Security.Certificates.CertificateException)
        {
            return false;
        }
    }

    private static string? Reason(PkiStatusInfo status)
        => status.StatusString is { Count: > 0 } text ? text[0].GetString().Split(':', 2)[0] : "cmp_rejected";
}
