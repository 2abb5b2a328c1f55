using System.Globalization;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Yarp.ReverseProxy.Configuration;

// Plain YARP terminating mTLS in front of a backend, as the YARP and Kestrel docs show it: a client certificate is
// required and chained to the operator CA in Kestrel's validation callback. No allow list, no policy, no decision
// stream. Usage: PlainYarp <port> <backend URL> <pki dir>
var port = int.Parse(args[0], CultureInfo.InvariantCulture);
var backend = args[1];
var pki = args[2];
using var serverCertificate = X509Certificate2.CreateFromPemFile(Path.Combine(pki, "server.pem"), Path.Combine(pki, "server.key.pem"));
using var operatorCa = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(pki, "operator-ca.pem"));

var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port, listen => listen.UseHttps(new HttpsConnectionAdapterOptions
{
    ServerCertificate = serverCertificate,
    ClientCertificateMode = ClientCertificateMode.RequireCertificate,
    ClientCertificateValidation = (certificate, _, _) =>
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(operatorCa);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    },
})));
builder.Services.AddReverseProxy().LoadFromMemory(
    [new RouteConfig { RouteId = "all", ClusterId = "backend", Match = new RouteMatch { Path = "{**catch-all}" } }],
    [new ClusterConfig { ClusterId = "backend", Destinations = new Dictionary<string, DestinationConfig> { ["backend"] = new() { Address = backend } } }]);
var app = builder.Build();
app.MapReverseProxy();
app.Run();
