using System.Security.Cryptography;

namespace KtZeroTrust.Core.Decisions;

/// <summary>
/// Sortable unique ids (ULID layout: 48-bit Unix milliseconds then 80 random bits, Crockford base32),
/// so decision ids order by time across nodes without coordination.
/// </summary>
public sealed class DecisionIdGenerator(TimeProvider timeProvider)
{
    private const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    public const int Length = 26;

    public string Next()
    {
        Span<byte> bytes = stackalloc byte[16];
        var ms = (ulong)timeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        for (var i = 5; i >= 0; i--)
        {
            bytes[i] = (byte)ms;
            ms >>= 8;
        }

        RandomNumberGenerator.Fill(bytes[6..]);
        return string.Create(Length, Encode(bytes), static (chars, value) =>
        {
            var (hi, lo) = value;
            // 128 bits -> 26 chars of 5 bits; the first char carries the top 3 bits.
            for (var i = Length - 1; i >= 0; i--)
            {
                chars[i] = Alphabet[(int)(lo & 31)];
                lo = (lo >> 5) | (hi << 59);
                hi >>= 5;
            }
        });
    }

    private static (ulong Hi, ulong Lo) Encode(ReadOnlySpan<byte> bytes)
        => (System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes), System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));
}
