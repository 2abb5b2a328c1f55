namespace KtZeroTrust.Pki.DevPki;

/// <summary>File names of the development PKI inside its directory (certs-dev/ by default).</summary>
public sealed class DevPkiLayout(string directory)
{
    public const string DevelopmentMarker = "DEVELOPMENT ONLY - NOT FOR PRODUCTION";

    public string Directory { get; } = Path.GetFullPath(directory);
    public string VendorRootCertificate => Path.Combine(Directory, "vendor-root.pem");
    public string VendorRootKey => Path.Combine(Directory, "vendor-root.key.pem");
    public string OperatorCaCertificate => Path.Combine(Directory, "operator-ca.pem");
    public string OperatorCaKey => Path.Combine(Directory, "operator-ca.key.pem");
    public string TlsRootCertificate => Path.Combine(Directory, "tls-root.pem");
    public string TlsRootKey => Path.Combine(Directory, "tls-root.key.pem");
    public string ServerCertificate => Path.Combine(Directory, "server.pem");
    public string ServerKey => Path.Combine(Directory, "server.key.pem");
    public string Manifest => Path.Combine(Directory, "manifest.json");

    /// <summary>Install sites, firmware reference values and model policies (attestation reference values).</summary>
    public string ReferenceValues => Path.Combine(Directory, "reference.json");

    public string IDevIdCertificate(string serial) => Path.Combine(Directory, "idevid", serial + ".pem");
    public string IDevIdKey(string serial) => Path.Combine(Directory, "idevid", serial + ".key.pem");
    public string LDevIdCertificate(string serial) => Path.Combine(Directory, "ldevid", serial + ".pem");
    public string LDevIdKey(string serial) => Path.Combine(Directory, "ldevid", serial + ".key.pem");

    /// <summary>True once the CAs and the server certificate exist.</summary>
    public bool IsInitialized => File.Exists(OperatorCaCertificate) && File.Exists(OperatorCaKey)
        && File.Exists(ServerCertificate) && File.Exists(ServerKey) && File.Exists(VendorRootCertificate);
}
