using System.Net;
using KtZeroTrust.Attestation;
using KtZeroTrust.Attestation.Admission;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Attestation.Tests;

public sealed class EnrollmentAdmissionTests
{
    private static EnrollmentAdmission Admission(int maxInFlight, double share = 0.5, int retryAfter = 10)
        => new(Options.Create(new AttestationOptions { Admission = new AdmissionOptions { MaxInFlight = maxInFlight, PrefixShare = share, RetryAfterSeconds = retryAfter } }));

    [Fact]
    public void BeyondCapacity_RequestsAreDeferred_AndASlotIsFreedByItsLease()
    {
        var admission = Admission(4);
        var a = IPAddress.Parse("10.1.1.5");
        var b = IPAddress.Parse("10.2.2.5");
        using var first = admission.TryEnter(a);
        using var second = admission.TryEnter(a);
        Assert.NotNull(first);
        Assert.NotNull(second);
        Assert.Null(admission.TryEnter(IPAddress.Parse("10.1.1.77"))); // the same /24 holds its share (2 of 4)
        using var third = admission.TryEnter(b);
        using var fourth = admission.TryEnter(IPAddress.Parse("10.3.3.5"));
        Assert.NotNull(third);
        Assert.NotNull(fourth);
        Assert.Null(admission.TryEnter(IPAddress.Parse("10.4.4.5"))); // the node is full
        Assert.Equal((4, 2L), (admission.InFlight, admission.Deferred));

        first!.Dispose();
        first.Dispose(); // twice is once
        Assert.Equal(3, admission.InFlight);
        using var again = admission.TryEnter(IPAddress.Parse("10.1.1.9"));
        Assert.NotNull(again);
    }

    [Fact]
    public void IPv6Sources_ShareBySlash48_AndMappedIPv4AsIPv4()
    {
        var admission = Admission(2);
        using var one = admission.TryEnter(IPAddress.Parse("2001:db8:1:1::5"));
        Assert.Null(admission.TryEnter(IPAddress.Parse("2001:db8:1:ffff::9"))); // same /48
        using var other = admission.TryEnter(IPAddress.Parse("::ffff:10.1.1.5"));
        Assert.NotNull(other);
    }

    [Fact]
    public void RetryAfter_IsSpreadBetweenTheWaitAndTwiceIt()
    {
        var admission = Admission(1, retryAfter: 10);
        var hints = Enumerable.Range(0, 500).Select(_ => admission.RetryAfterSeconds()).ToList();
        Assert.All(hints, h => Assert.InRange(h, 10, 20));
        Assert.True(hints.Distinct().Count() > 5); // spread, not one value
    }
}
