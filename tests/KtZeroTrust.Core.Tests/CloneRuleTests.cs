using System.Net;
using KtZeroTrust.Core.Devices;

namespace KtZeroTrust.Core.Tests;

/// <summary>The one clone rule the gateway and the fleet detector both ask (they disagreed on loopback addresses before).</summary>
public sealed class CloneRuleTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 2, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(5);

    [Theory]
    [InlineData("10.0.0.1", "10.0.0.1", true)]
    [InlineData("::ffff:10.0.0.1", "10.0.0.1", true)]
    [InlineData("::1", "127.0.0.1", true)] // "localhost" is either
    [InlineData("127.0.0.1", "127.0.0.2", false)] // another loopback address is another place (a second site in the tests)
    [InlineData("10.0.0.1", "10.0.0.2", false)]
    [InlineData("2001:db8::1", "2001:db8::2", false)]
    public void SamePlace_IsOneAnswerForAddressesAndTheirText(string a, string b, bool same)
    {
        Assert.Equal(same, CloneRule.SamePlace(IPAddress.Parse(a), IPAddress.Parse(b)));
        Assert.Equal(same, CloneRule.SamePlace(a, b)); // as the stream writes them: the same answer
    }

    [Fact]
    public void AClone_IsTwoPlacesWithinTheWindow_InEitherOrder()
    {
        var (a, b) = (IPAddress.Parse("10.0.0.1"), IPAddress.Parse("10.0.0.2"));
        Assert.True(CloneRule.IsClone(a, T0, b, T0 + Window, Window));
        Assert.True(CloneRule.IsClone(a, T0 + Window, b, T0, Window)); // the stream can deliver out of order
        Assert.False(CloneRule.IsClone(a, T0, b, T0 + Window + TimeSpan.FromTicks(1), Window));
        Assert.False(CloneRule.IsClone(a, T0, IPAddress.Parse("10.0.0.1"), T0, Window));
        Assert.False(CloneRule.SamePlace("not-an-address", "10.0.0.1"));
        Assert.True(CloneRule.SamePlace("not-an-address", "not-an-address"));
    }
}
