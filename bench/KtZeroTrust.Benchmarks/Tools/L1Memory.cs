using System.Globalization;
using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;

namespace KtZeroTrust.Benchmarks.Tools;

/// <summary>Managed heap taken by N entries in the L1 (default 1,000,000), measured after full collections.</summary>
internal static class L1Memory
{
    public static int Run(string[] args)
    {
        var count = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1_000_000;
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var cache = new AllowListCache();
        for (var i = 0; i < count; i++)
        {
            cache.Apply(SampleEntries.Active(i));
        }

        var after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(cache);
        var bytes = after - before;
        Console.WriteLine($"L1 with {cache.Count:N0} entries (serials of 10 characters): {bytes / 1024.0 / 1024.0:0.0} MiB managed heap, {bytes / (double)count:0} bytes per entry");
        return 0;
    }
}

/// <summary>The synthetic fleet the allow-list measurements fill the cache with.</summary>
internal static class SampleEntries
{
    public static AllowListEntry Active(int i) => new()
    {
        CertificateHash = CertificateHash.Of(BitConverter.GetBytes(i)),
        DeviceSerial = $"FC-{i:D7}",
        State = DeviceLifecycleState.Active,
        NotBeforeUtcTicks = 0,
        NotAfterUtcTicks = long.MaxValue,
        Version = i,
    };
}
