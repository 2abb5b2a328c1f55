namespace KtZeroTrust.Tests.Common;

/// <summary>Damaged copies of a genuine message, the way a fuzzing attacker (or a broken link) would send them.</summary>
public static class Mutations
{
    /// <summary><paramref name="count"/> copies: one bit flipped, cut short, or <paramref name="noise"/> bytes of noise, in turn.</summary>
    public static IEnumerable<(int Index, byte[] Bytes)> Of(byte[] genuine, int count, int seed, int noise = 8)
    {
        ArgumentNullException.ThrowIfNull(genuine);
        var random = new Random(seed);
        for (var i = 0; i < count; i++)
        {
            var mutated = (byte[])genuine.Clone();
            switch (i % 3)
            {
                case 0: mutated[random.Next(mutated.Length)] ^= (byte)(1 << random.Next(8)); break;
                case 1: mutated = mutated[..random.Next(1, mutated.Length)]; break;
                default: random.NextBytes(mutated.AsSpan(random.Next(mutated.Length / 2), noise)); break;
            }

            yield return (i, mutated);
        }
    }
}
