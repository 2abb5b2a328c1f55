using System.Net;
using KtZeroTrust.Gateway.Identity;
using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Server.Pki;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace KtZeroTrust.Server.Hosting;

/// <summary>Binds the Kestrel endpoints of the enabled roles, each tagged with its listener kind.</summary>
internal static class ListenerConfiguration
{
    public static void Configure(KestrelServerOptions kestrel, ServerOptions options)
    {
        var services = kestrel.ApplicationServices;
        var pki = services.GetRequiredService<ServerPki>();
        kestrel.AddServerHeader = false;

        if (options.Roles.Gateway)
        {
            Listen(kestrel, "Device", options.Listeners.Device, lo =>
            {
                lo.UseListenerKind(ListenerKind.Device);
                lo.UseDeviceTls();
            });
            // Users may also present a managed-device certificate (routes with RequireDeviceCertificate); judged per request.
            Listen(kestrel, "User", options.Listeners.User, lo => Tls(lo, ListenerKind.User, pki, ClientCertificateMode.AllowCertificate));
        }

        if (options.Roles.Attestation)
        {
            // The enrollment listener asks for a client certificate (the IDevID) but does not require one: EST clients
            // may authenticate with HTTP Basic instead. Its chain is judged by the attestation verifier, not by TLS.
            Listen(kestrel, "Enrollment", options.Listeners.Enrollment, lo => Tls(lo, ListenerKind.Enrollment, pki, ClientCertificateMode.AllowCertificate));
        }

        if (options.Roles.Console)
        {
            Listen(kestrel, "Console", options.Listeners.Console, lo => Tls(lo, ListenerKind.Console, pki, ClientCertificateMode.NoCertificate));
        }

        if (options.DemoUpstream.Enabled)
        {
            kestrel.Listen(IPAddress.Loopback, options.DemoUpstream.Port, lo =>
            {
                lo.Protocols = HttpProtocols.Http1;
                lo.UseListenerKind(ListenerKind.Internal);
            });
        }
    }

    private static void Tls(ListenOptions lo, ListenerKind kind, ServerPki pki, ClientCertificateMode mode)
    {
        lo.UseListenerKind(kind);
        // SslStream builds a chain for any client certificate, whatever decides afterwards: with the default policy that
        // is the system store (hundreds of roots to search per handshake) and AIA downloads. Ours instead: no network.
        var chainPolicy = TrustPolicies.CustomRoots(pki.VendorRoot is { } vendor ? [pki.OperatorCa, vendor] : [pki.OperatorCa]);
        lo.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificate = pki.ServerCertificate,
            ClientCertificateMode = mode,
            // Client certificates on these listeners are evaluated by their features (attestation, user gateway), not here.
            ClientCertificateValidation = (_, _, _) => true,
            OnAuthenticate = (_, ssl) => ssl.CertificateChainPolicy = chainPolicy.Clone(),
            SslProtocols = System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13,
        });
    }

    private static void Listen(KestrelServerOptions kestrel, string name, ListenerOptions listener, Action<ListenOptions> configure)
    {
        if (listener.Port is <= 0 or > 65535)
        {
            throw new StartupException("ZT-START-003", $"ZeroTrust:Listeners:{name}:Port must be between 1 and 65535 (was {listener.Port}).");
        }

        void Apply(ListenOptions lo)
        {
            lo.Protocols = HttpProtocols.Http1AndHttp2;
            configure(lo);
        }

        var address = listener.Address.Trim();
        if (address.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            kestrel.ListenLocalhost(listener.Port, Apply);
        }
        else if (address is "*" or "+")
        {
            kestrel.ListenAnyIP(listener.Port, Apply);
        }
        else if (IPAddress.TryParse(address, out var ip))
        {
            kestrel.Listen(ip, listener.Port, Apply);
        }
        else
        {
            throw new StartupException("ZT-START-004", $"ZeroTrust:Listeners:{name}:Address '{listener.Address}' is not 'localhost', '*' or an IP address.");
        }
    }
}
