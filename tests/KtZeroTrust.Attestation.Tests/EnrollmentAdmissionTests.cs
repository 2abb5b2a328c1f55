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
    public void ASite_HoldsAtMostItsShare_FromAnyPrefix_AndTheCauseIsSaid()
    {
        var admission = Admission(5); // shares of 2
        using var one = admission.TryEnter(IPAddress.Parse("10.1.1.5"), "busan");
        using var two = admission.TryEnter(IPAddress.Parse("10.2.2.5"), "busan");
        Assert.NotNull(one);
        Assert.NotNull(two);
        Assert.Null(admission.TryEnter(IPAddress.Parse("10.3.3.5"), "busan", out var cause)); // a third prefix, the same site
        Assert.Equal(DeferralCause.SiteShare, cause);
        Assert.Equal(2, admission.InFlight); // the refused request's prefix and node slots given back
        using var other = admission.TryEnter(IPAddress.Parse("10.3.3.5"), "seoul", out cause);
        Assert.NotNull(other);
        Assert.Equal(DeferralCause.None, cause);
        using var prefixFull = admission.TryEnter(IPAddress.Parse("10.3.3.9"), "daejeon");
        Assert.Null(admission.TryEnter(IPAddress.Parse("10.3.3.10"), "incheon", out cause));
        Assert.Equal(DeferralCause.PrefixShare, cause);
        using var fourth = admission.TryEnter(IPAddress.Parse("10.6.6.6"));
        Assert.NotNull(fourth);
        Assert.Null(admission.TryEnter(IPAddress.Parse("10.4.4.4"), null, out cause));
        Assert.Equal(DeferralCause.NodeFull, cause);

        var counts = admission.Metrics.ToDictionary(m => m.Name, m => m.Read());
        Assert.Equal((3d, 1d, 1d), (counts["ktzt_admission_deferred_total"], counts["ktzt_admission_deferred_site_total"], counts["ktzt_admission_deferred_prefix_total"]));
        two!.Dispose();
        using var again = admission.TryEnter(IPAddress.Parse("10.5.5.5"), "busan");
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
