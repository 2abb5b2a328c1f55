using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KtZeroTrust.Pki.Certificates;

/// <summary>Reads and writes PEM files. Private keys are created with mode 0600 and never overwritten unless asked.</summary>
public static class PemFiles
{
    private const UnixFileMode PrivateKeyMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public static void WriteCertificate(string path, X509Certificate2 certificate, bool overwrite)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        Write(path, certificate.ExportCertificatePem() + "\n", overwrite, secret: false);
    }

    public static void WritePrivateKey(string path, ECDsa key, bool overwrite)
    {
        ArgumentNullException.ThrowIfNull(key);
        Write(path, key.ExportPkcs8PrivateKeyPem() + "\n", overwrite, secret: true);
    }

    /// <summary>Loads a certificate PEM (the first certificate in the file).</summary>
    public static X509Certificate2 ReadCertificate(string path)
    {
        try
        {
            return X509Certificate2.CreateFromPem(File.ReadAllText(path));
        }
        catch (CryptographicException ex)
        {
            throw new PkiException(PkiException.MalformedFile, $"'{path}' does not hold a PEM certificate: {ex.Message}", ex);
        }
        catch (FileNotFoundException ex)
        {
            throw new PkiException(PkiException.MissingFile, $"Certificate file '{path}' does not exist.", ex);
        }
    }

    /// <summary>Loads a certificate with its ECDSA private key.</summary>
    public static X509Certificate2 ReadCertificateWithKey(string certificatePath, string keyPath)
    {
        foreach (var p in new[] { certificatePath, keyPath })
        {
            if (!File.Exists(p))
            {
                throw new PkiException(PkiException.MissingFile, $"'{p}' does not exist.");
            }
        }

        try
        {
            return X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            throw new PkiException(PkiException.MalformedFile, $"'{certificatePath}' and '{keyPath}' are not a matching PEM certificate and ECDSA key: {ex.Message}", ex);
        }
    }

    private static void Write(string path, string content, bool overwrite, bool secret)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        if (!overwrite && File.Exists(path))
        {
            throw new PkiException(PkiException.WouldOverwrite, $"'{path}' already exists; pass --force to replace it.");
        }

        // Write to a temporary file created with the final mode, then rename, so a key is never readable by others
        // and a crash never leaves a half-written file in place.
        var temp = path + ".tmp-" + Environment.ProcessId;
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (secret && !OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = PrivateKeyMode;
        }

        using (var stream = new FileStream(temp, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(content);
        }

        File.Move(temp, path, overwrite: true);
        if (secret && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, PrivateKeyMode);
        }
    }
}

/// <summary>A PKI operation that failed for a reason the caller can act on. <see cref="Code"/> is stable.</summary>
public sealed class PkiException : Exception
{
    public const string MissingFile = "ZT-PKI-001";
    public const string MalformedFile = "ZT-PKI-002";
    public const string WouldOverwrite = "ZT-PKI-003";
    public const string PolicyViolation = "ZT-PKI-004";
    public const string InvalidManifest = "ZT-PKI-005";

    public PkiException(string code, string message, Exception? inner = null) : base(message, inner) => Code = code;

    public string Code { get; }
}
