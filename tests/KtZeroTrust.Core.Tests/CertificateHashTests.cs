using System.Security.Cryptography;
using KtZeroTrust.Core.Certificates;

namespace KtZeroTrust.Core.Tests;

public sealed class CertificateHashTests
{
    [Fact]
    public void Of_Der_EqualsSha256AndRoundTripsThroughHex()
    {
        var der = RandomNumberGenerator.GetBytes(300);
        var hash = CertificateHash.Of(der);

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(der)), hash.ToString());
        Assert.Equal(hash, CertificateHash.Parse(hash.ToString()));
        Assert.Equal(hash, CertificateHash.Parse(hash.ToString().ToUpperInvariant()));
    }

    [Fact]
    public void Hashes_OfDifferentInputs_DifferInEveryWord()
    {
        var a = CertificateHash.Of([1, 2, 3]);
        var b = CertificateHash.Of([1, 2, 4]);
        Assert.NotEqual(a, b);
        Assert.True(a != b);
        Assert.False(a.IsEmpty);
        Assert.True(default(CertificateHash).IsEmpty);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("zz00000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("00000000000000000000000000000000000000000000000000000000000000000")]
    public void TryParse_Malformed_ReturnsFalse(string? text)
    {
        Assert.False(CertificateHash.TryParse(text, out _));
        Assert.Throws<FormatException>(() => CertificateHash.Parse(text!));
    }

    [Fact]
    public void Constructor_WrongLength_Throws()
        => Assert.Throws<ArgumentException>(() => new CertificateHash(new byte[31]));
}
