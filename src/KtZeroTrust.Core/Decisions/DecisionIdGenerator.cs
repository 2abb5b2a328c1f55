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

    private readonly Lock _gate = new();
    private ulong _lastMs;
    private ulong _randomHi; // 16 bits
    private ulong _randomLo; // 64 bits

    /// <summary>
    /// Within one millisecond the 80-bit random part is incremented instead of drawn again (monotonic ULIDs): ids stay
    /// unique and ordered, and the random source (OpenSSL, with its locks) is asked at most once per millisecond
    /// instead of once per request.
    /// </summary>
    public string Next()
    {
        Span<byte> bytes = stackalloc byte[16];
        var ms = (ulong)timeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        ulong hi, lo;
        lock (_gate)
        {
            if (ms > _lastMs)
            {
                Span<byte> fresh = stackalloc byte[10];
                RandomNumberGenerator.Fill(fresh);
                _randomHi = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(fresh);
                _randomLo = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(fresh[2..]);
                _lastMs = ms;
            }
            else
            {
                ms = _lastMs; // the clock stepped back or stood still: stay in the last millisecond, keep counting
                if (++_randomLo == 0)
                {
                    _randomHi = (_randomHi + 1) & 0xFFFF;
                }
            }

            (hi, lo) = (_randomHi, _randomLo);
        }

        for (var i = 5; i >= 0; i--)
        {
            bytes[i] = (byte)ms;
            ms >>= 8;
        }

        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(bytes[6..], (ushort)hi);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], lo);
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
