using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KtZeroTrust.Core.Certificates;

/// <summary>
/// SHA-256 of a certificate's DER encoding, held as four longs so that equality and hashing on the
/// gateway's hot path are a few integer compares with no allocation.
/// </summary>
public readonly struct CertificateHash : IEquatable<CertificateHash>
{
    public const int Size = 32;
    private readonly ulong _a, _b, _c, _d;

    public CertificateHash(ReadOnlySpan<byte> sha256)
    {
        if (sha256.Length != Size)
        {
            ThrowWrongLength();
        }

        _a = BinaryPrimitives.ReadUInt64BigEndian(sha256);
        _b = BinaryPrimitives.ReadUInt64BigEndian(sha256[8..]);
        _c = BinaryPrimitives.ReadUInt64BigEndian(sha256[16..]);
        _d = BinaryPrimitives.ReadUInt64BigEndian(sha256[24..]);
    }

    public bool IsEmpty => (_a | _b | _c | _d) == 0;

    public static CertificateHash Of(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Of(certificate.RawDataMemory.Span);
    }

    public static CertificateHash Of(ReadOnlySpan<byte> der)
    {
        Span<byte> digest = stackalloc byte[Size];
        SHA256.HashData(der, digest);
        return new CertificateHash(digest);
    }

    public static bool TryParse(string? hex, out CertificateHash hash)
    {
        hash = default;
        if (hex is null || hex.Length != Size * 2)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[Size];
        if (Convert.FromHexString(hex, bytes, out _, out var written) != System.Buffers.OperationStatus.Done || written != Size)
        {
            return false;
        }

        hash = new CertificateHash(bytes);
        return true;
    }

    public static CertificateHash Parse(string hex)
        => TryParse(hex, out var hash) ? hash : throw new FormatException("A certificate hash is 64 hexadecimal characters (SHA-256).");

    public void CopyTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _a);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _b);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], _c);
        BinaryPrimitives.WriteUInt64BigEndian(destination[24..], _d);
    }

    /// <summary>Lower-case hex, the form used in the registry and in decision events.</summary>
    public override string ToString()
    {
        Span<byte> bytes = stackalloc byte[Size];
        CopyTo(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    public bool Equals(CertificateHash other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d;

    public override bool Equals(object? obj) => obj is CertificateHash other && Equals(other);

    // The value is already a uniformly distributed digest: any 32 bits of it make a good hash code.
    public override int GetHashCode() => (int)_a;

    public static bool operator ==(CertificateHash left, CertificateHash right) => left.Equals(right);

    public static bool operator !=(CertificateHash left, CertificateHash right) => !left.Equals(right);

    [DoesNotReturn]
    private static void ThrowWrongLength() => throw new ArgumentException("A certificate hash is exactly 32 bytes (SHA-256).", "sha256");
}
