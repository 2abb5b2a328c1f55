using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;

namespace KtZeroTrust.Core.Tests;

public sealed class AllowListEntryCodecTests
{
    private static AllowListEntry Entry(byte id, DeviceLifecycleState state = DeviceLifecycleState.Active) => new()
    {
        CertificateHash = CertificateHash.Of([id]),
        DeviceSerial = "FC-" + id,
        State = state,
        NotBeforeUtcTicks = 638_000_000_000_000_000 + id,
        NotAfterUtcTicks = 639_000_000_000_000_000 + id,
        CertificateRevoked = id % 2 == 0,
        Version = 10 + id,
    };

    [Fact]
    public void Entry_RoundTrips()
    {
        var entry = Entry(2, DeviceLifecycleState.Suspended);
        Assert.Equal(entry, AllowListEntryCodec.Decode(AllowListEntryCodec.Encode(entry)));
    }

    [Fact]
    public void ModelAndSite_RoundTrip_AndFormat1EntriesAreStillRead()
    {
        var entry = Entry(3) with { Model = "KTF-HNB-5G", Site = "서울-site-7" };
        var bytes = AllowListEntryCodec.Encode(entry);
        Assert.Equal(entry, AllowListEntryCodec.Decode(bytes));
        Assert.Equal(Entry(4), AllowListEntryCodec.Decode(AllowListEntryCodec.Encode(Entry(4)))); // both absent

        // Format 1 (before model and site): the same bytes without the two trailing fields.
        var withoutBoth = AllowListEntryCodec.Encode(Entry(5));
        byte[] format1 = [1, .. withoutBoth.AsSpan(1, withoutBoth.Length - 3)];
        Assert.Equal(Entry(5), AllowListEntryCodec.Decode(format1));

        Assert.Throws<FormatException>(() => AllowListEntryCodec.Decode(bytes.AsSpan(0, bytes.Length - 2))); // site cut short
        Assert.Throws<ArgumentException>(() => AllowListEntryCodec.Encode(Entry(6) with { Model = new string('m', 300) }));
    }

    [Fact]
    public void StateReason_RoundTrips_InFormat3_LongOnesCut_AndEntriesWithoutOneStayFormat2()
    {
        var suspended = Entry(7, DeviceLifecycleState.Suspended) with { StateReason = "detector:idle: device_idle: unseen for 31 days" };
        var bytes = AllowListEntryCodec.Encode(suspended);
        Assert.Equal(3, bytes[0]);
        Assert.Equal(suspended, AllowListEntryCodec.Decode(bytes));
        Assert.Equal(2, AllowListEntryCodec.Encode(Entry(8))[0]); // previous-release nodes still read what has no reason

        var longReason = Entry(9, DeviceLifecycleState.Revoked) with { StateReason = "운영자: " + new string('x', 400) };
        var decoded = AllowListEntryCodec.Decode(AllowListEntryCodec.Encode(longReason));
        Assert.StartsWith("운영자: xxx", decoded.StateReason, StringComparison.Ordinal);
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(decoded.StateReason!) < 255);
        Assert.Equal(suspended, AllowListEntryCodec.DecodeBatch(AllowListEntryCodec.EncodeBatch([Entry(8), suspended]))[1]);
    }

    [Fact]
    public void Batch_RoundTrips()
    {
        var entries = Enumerable.Range(1, 50).Select(i => Entry((byte)i, (DeviceLifecycleState)(i % 5))).ToList();
        Assert.Equal(entries, AllowListEntryCodec.DecodeBatch(AllowListEntryCodec.EncodeBatch(entries)));
    }

    [Fact]
    public void MalformedBytes_AreRefused_NeverMisread()
    {
        var good = AllowListEntryCodec.Encode(Entry(1));
        Assert.Throws<FormatException>(() => AllowListEntryCodec.Decode(good.AsSpan(0, good.Length - 1)));
        Assert.Throws<FormatException>(() => AllowListEntryCodec.Decode([.. good, 0]));
        Assert.Throws<FormatException>(() => AllowListEntryCodec.Decode([]));
        var badVersion = good.ToArray();
        badVersion[0] = 9;
        Assert.Throws<FormatException>(() => AllowListEntryCodec.Decode(badVersion));
        var badState = good.ToArray();
        badState[1 + 32 + 8] = 200;
        Assert.Throws<FormatException>(() => AllowListEntryCodec.Decode(badState));
        var badSerial = good.ToArray();
        badSerial[^1] = (byte)' ';
        Assert.Throws<FormatException>(() => AllowListEntryCodec.Decode(badSerial));

        var batch = AllowListEntryCodec.EncodeBatch([Entry(1), Entry(2)]);
        Assert.Throws<FormatException>(() => AllowListEntryCodec.DecodeBatch(batch.AsSpan(0, batch.Length - 3)));
        var lying = batch.ToArray();
        lying[4] = 3; // claims three entries, holds two
        Assert.Throws<FormatException>(() => AllowListEntryCodec.DecodeBatch(lying));
        Assert.Throws<FormatException>(() => AllowListEntryCodec.DecodeBatch("garbage!"u8));
    }
}
