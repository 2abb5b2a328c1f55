using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;

namespace KtZeroTrust.Server.Pki;

/// <summary>The certificates the server runs with, loaded once at start.</summary>
public sealed class ServerPki : IDisposable
{
    private ServerPki(X509Certificate2 serverCertificate, X509Certificate2 operatorCa, X509Certificate2? vendorRoot, DevPkiLayout layout)
    {
        ServerCertificate = serverCertificate;
        OperatorCa = operatorCa;
        VendorRoot = vendorRoot;
        Layout = layout;
    }

    public X509Certificate2 ServerCertificate { get; }
    public X509Certificate2 OperatorCa { get; }
    public X509Certificate2? VendorRoot { get; }
    public DevPkiLayout Layout { get; }

    public static ServerPki Load(ServerPkiOptions options, bool isProduction)
    {
        ArgumentNullException.ThrowIfNull(options);
        var layout = new DevPkiLayout(options.Directory);
        var serverCertPath = options.ServerCertificate ?? layout.ServerCertificate;
        var serverKeyPath = options.ServerKey ?? layout.ServerKey;
        var operatorCaPath = options.OperatorCaCertificate ?? layout.OperatorCaCertificate;
        var vendorRootPath = options.VendorRootCertificate ?? layout.VendorRootCertificate;

        if (!File.Exists(serverCertPath) || !File.Exists(operatorCaPath))
        {
            throw new StartupException("ZT-START-002",
                $"No PKI at '{layout.Directory}': the server certificate ('{serverCertPath}') and the operator device CA ('{operatorCaPath}') are required. " +
                "In Development they are generated on first start; otherwise run `ztctl pki init` or configure ZeroTrust:Pki.");
        }

        var server = PemFiles.ReadCertificateWithKey(serverCertPath, serverKeyPath);
        var operatorCa = PemFiles.ReadCertificate(operatorCaPath);
        var vendorRoot = File.Exists(vendorRootPath) ? PemFiles.ReadCertificate(vendorRootPath) : null;

        if (isProduction)
        {
            var devFiles = new[] { server, operatorCa, vendorRoot }.Where(c => c is not null && DevelopmentPki.IsDevelopmentCertificate(c)).ToList();
            var underCertsDev = string.Equals(Path.GetFileName(layout.Directory.TrimEnd(Path.DirectorySeparatorChar)), "certs-dev", StringComparison.Ordinal);
            if (devFiles.Count > 0 || underCertsDev)
            {
                throw new StartupException("ZT-START-001",
                    $"Refusing to start in the Production environment with development keys ('{layout.Directory}'). Configure ZeroTrust:Pki with the operator's PKI.");
            }
        }

        return new ServerPki(server, operatorCa, vendorRoot, layout);
    }

    /// <summary>The operator device CA with its key, for the attestation role (EST issuance, the CRL).</summary>
    public static CertificateAuthority LoadOperatorCa(ServerPkiOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var layout = new DevPkiLayout(options.Directory);
        var certificate = options.OperatorCaCertificate ?? layout.OperatorCaCertificate;
        var key = options.OperatorCaKey ?? layout.OperatorCaKey;
        if (!File.Exists(certificate) || !File.Exists(key))
        {
            throw new StartupException("ZT-START-005",
                $"The attestation role issues certificates and needs the operator device CA and its key ('{certificate}', '{key}'). Configure ZeroTrust:Pki or turn ZeroTrust:Roles:Attestation off.");
        }

        return new CertificateAuthority(PemFiles.ReadCertificateWithKey(certificate, key));
    }

    public void Dispose()
    {
        ServerCertificate.Dispose();
        OperatorCa.Dispose();
        VendorRoot?.Dispose();
    }
}

/// <summary>The server cannot start as configured; the message says why and what to do. <see cref="Code"/> is stable.</summary>
public sealed class StartupException(string code, string message) : Exception($"{code}: {message}")
{
    public string Code { get; } = code;
}
