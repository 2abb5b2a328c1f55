using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Hosting.Listeners;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;

namespace KtZeroTrust.Gateway.Identity;

/// <summary>
/// TLS for the device listener. SslStream builds the client chain once, under the operator-CA-only policy; the
/// validation callback then applies the cached device policy, stores the identity on the connection (parsed once per
/// connection) and records a decision for every refused handshake.
/// </summary>
public sealed partial class DeviceTlsHandshake(
    SslStreamCertificateContext serverCertificate,
    DeviceTrust trust,
    DeviceCertificateValidator validator,
    IDecisionSink decisions,
    DecisionFactory decisionFactory,
    TimeProvider timeProvider,
    ILogger<DeviceTlsHandshake> logger)
{
    private static readonly object IdentityKey = new();

    /// <summary>How long a device may take over its handshake (and, before it, over its ClientHello).</summary>
    public static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    public TlsHandshakeCallbackOptions CreateCallbackOptions() => new()
    {
        OnConnection = context => ValueTask.FromResult(CreateOptions(context.Connection)),
        HandshakeTimeout = HandshakeTimeout,
    };

    /// <summary>The identity established by this connection's handshake, or null.</summary>
    public static DeviceConnectionIdentity? GetIdentity(IDictionary<object, object?>? connectionItems)
        => connectionItems is not null && connectionItems.TryGetValue(IdentityKey, out var value) ? value as DeviceConnectionIdentity : null;

    /// <summary>Stores the identity the handshake established on its connection.</summary>
    internal static void SetIdentity(IDictionary<object, object?> connectionItems, DeviceConnectionIdentity identity) => connectionItems[IdentityKey] = identity;

    private SslServerAuthenticationOptions CreateOptions(ConnectionContext connection) => new()
    {
        ServerCertificateContext = serverCertificate,
        ClientCertificateRequired = true,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        CertificateChainPolicy = trust.CreateChainPolicy(),
        ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
        // No resumption: a ticket and its secret sit in a unit's RAM, and whoever lifts them could connect as the device
        // without its key. Every connection is a full handshake with the client certificate. (Measured: no slower here,
        // since the tickets' session copies cost about what a fresh SSL_CTX per handshake does; bench/README.md.)
        AllowTlsResume = false,
        RemoteCertificateValidationCallback = (_, certificate, chain, errors) => OnValidate(connection, certificate as X509Certificate2, chain, errors),
    };

    private bool OnValidate(ConnectionContext connection, X509Certificate2? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        var start = timeProvider.GetTimestamp();
        var result = validator.ValidateHandshake(certificate, chain, errors);
        if (result.IsValid)
        {
            SetIdentity(connection.Items, result.Identity!);
            return true;
        }

        // This refusal is recorded here, with the certificate: the connection-level recorder must not record it again.
        connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionMetricsTagsFeature>()?.Tags.Add(new(ConnectionRefusalRecorder.RecordedTag, true));
        var remote = connection.RemoteEndPoint as IPEndPoint;
        var claimed = certificate is null ? null : Pki.Certificates.DeviceCertificates.SerialOf(certificate);
        var hash = result.Hash.IsEmpty ? null : result.Hash.ToString();
        LogRejected(logger, ReasonCodes.Name(result.Reason), claimed, remote?.Address.ToString(), hash);
        decisions.Post(decisionFactory.Handshake(result.Reason, claimed, remote, hash, "tls-handshake", timeProvider.GetElapsedTime(start).TotalMicroseconds));
        return false;
    }

    [LoggerMessage(EventId = GatewayEventIds.HandshakeRejected, Level = LogLevel.Warning,
        Message = "Device TLS handshake refused: {Reason}; claimed serial {ClaimedSerial} from {Source}, certificate {CertificateSha256}")]
    private static partial void LogRejected(ILogger logger, string reason, string? claimedSerial, string? source, string? certificateSha256);
}
