using KtZeroTrust.Core.Decisions;

namespace KtZeroTrust.Core.Tests;

public sealed class DecisionIdGeneratorTests
{
    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public void Next_IsUniqueCrockfordBase32AndSortsByTime()
    {
        var time = new FixedTime(new DateTimeOffset(2026, 11, 22, 0, 0, 0, TimeSpan.Zero));
        var ids = new DecisionIdGenerator(time);
        var earlier = Enumerable.Range(0, 1000).Select(_ => ids.Next()).ToList();
        time.Now = time.Now.AddMilliseconds(1);
        var later = ids.Next();

        Assert.Equal(1000, earlier.Distinct().Count());
        Assert.All(earlier, id => Assert.Matches("^[0-9A-HJKMNP-TV-Z]{26}$", id));
        Assert.All(earlier, id => Assert.True(string.CompareOrdinal(id, later) < 0));
    }

    [Fact]
    public void WithinAMillisecond_IdsAreMonotonic_EvenWhenTheClockStepsBack_AndUniqueAcrossThreads()
    {
        var time = new FixedTime(new DateTimeOffset(2026, 11, 22, 0, 0, 0, TimeSpan.Zero));
        var ids = new DecisionIdGenerator(time);
        var sequence = Enumerable.Range(0, 500).Select(_ => ids.Next()).ToList();
        time.Now = time.Now.AddSeconds(-5); // NTP stepped the clock back
        sequence.AddRange(Enumerable.Range(0, 500).Select(_ => ids.Next()));
        Assert.Equal(sequence.Order(StringComparer.Ordinal), sequence); // strictly in issue order
        Assert.Equal(1000, sequence.Distinct().Count());

        var concurrent = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, 20_000, _ => concurrent.Add(ids.Next()));
        Assert.Equal(20_000, concurrent.Distinct().Count());

        var other = new DecisionIdGenerator(time); // another node, same millisecond: a different random start
        Assert.NotEqual(ids.Next()[10..16], other.Next()[10..16]);
    }

    [Fact]
    public void ReasonCodes_HaveStableDistinctWireNames()
    {
        var names = Enum.GetValues<ReasonCode>().Select(ReasonCodes.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.DoesNotContain("unknown", names);
        Assert.Equal("device_revoked", ReasonCodes.Name(ReasonCode.DeviceRevoked));
    }
}
