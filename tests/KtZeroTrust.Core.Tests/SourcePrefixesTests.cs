using System.Net;
using KtZeroTrust.Core.Networks;

namespace KtZeroTrust.Core.Tests;

/// <summary>The one CIDR matcher a route policy and the source-prefix detector share.</summary>
public sealed class SourcePrefixesTests
{
    [Theory]
    [InlineData("10.0.0.7", true)]
    [InlineData("::ffff:10.0.0.7", true)] // a dual-stack listener's view of an IPv4 peer
    [InlineData("10.1.0.7", false)]
    [InlineData("2001:db8::5", true)]
    [InlineData("2001:db9::5", false)]
    public void Allows_WhatIsInsideAPrefix(string source, bool allowed)
    {
        var prefixes = SourcePrefixes.Parse(["10.0.0.0/16", "2001:db8::/32"]);

        Assert.Equal(allowed, prefixes.Allows(IPAddress.Parse(source)));
    }

    [Fact]
    public void NoPrefix_AllowsAnySource_AndAnUnknownSourceIsInNoPrefix()
    {
        Assert.True(SourcePrefixes.Parse([]).IsAny);
        Assert.True(SourcePrefixes.Parse([]).Allows(null));
        Assert.False(SourcePrefixes.Parse(["10.0.0.0/8"]).Allows(null));
    }

    [Fact]
    public void ABadPrefix_IsRefusedByName_WhenConfigured_AndLeftOut_WhenStored()
    {
        var ex = Assert.Throws<FormatException>(() => SourcePrefixes.Parse(["10.0.0.0/8", "10.0.0.0/33"]));
        Assert.Contains("'10.0.0.0/33'", ex.Message, StringComparison.Ordinal);

        var stored = SourcePrefixes.ParseValid(["garbage", "10.0.0.0/8"]);
        Assert.True(stored.Allows(IPAddress.Parse("10.2.3.4")));
        Assert.False(stored.Allows(IPAddress.Parse("192.0.2.1")));
        Assert.Equal("10.0.0.0/8", stored.ToString());
    }
}
