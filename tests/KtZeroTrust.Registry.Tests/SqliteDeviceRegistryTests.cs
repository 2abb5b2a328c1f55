using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Registry.Sqlite;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Registry.Tests;

public sealed class SqliteDeviceRegistryTests : IDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private readonly TempDirectory _temp = new();
    private readonly SqliteDeviceRegistry _registry;

    public SqliteDeviceRegistryTests() => _registry = new SqliteDeviceRegistry(_temp.Combine("data", "registry.db"), TimeProvider.System);

    private static ManifestDevice Device(string serial, string? idevid = null) => new() { Serial = serial, Model = "M1", Site = "site-1", IDevIdSha256 = idevid };

    private static DeviceCertificateRecord Certificate(string serial, DateTimeOffset? notAfter = null) => new()
    {
        Sha256 = CertificateHash.Of(Guid.NewGuid().ToByteArray()).ToString(),
        DeviceSerial = serial,
        CertificateSerialNumber = "01",
        NotBefore = DateTimeOffset.UtcNow.AddMinutes(-1),
        NotAfter = notAfter ?? DateTimeOffset.UtcNow.AddDays(1),
        IssuedAt = DateTimeOffset.UtcNow,
    };

    [Fact]
    public async Task Import_AddsProvisionedDevices_AndSkipsKnownSerials()
    {
        var first = await _registry.ImportAsync([Device("A1"), Device("A2")], "test", Ct);
        var second = await _registry.ImportAsync([Device("A2"), Device("A3")], "test", Ct);

        Assert.Equal(["A1", "A2"], first.Imported);
        Assert.Equal(["A3"], second.Imported);
        Assert.Equal(["A2"], second.AlreadyKnown);
        var all = await _registry.ListAsync(cancellationToken: Ct);
        Assert.All(all, d => Assert.Equal(DeviceLifecycleState.Provisioned, d.State));
        Assert.Equal(3, all.Count);
    }

    [Fact]
    public async Task Import_SameFactoryIdentityUnderTwoSerials_IsRefused()
    {
        var idevid = new string('a', 64);
        await _registry.ImportAsync([Device("A1", idevid)], "test", Ct);

        var ex = await Assert.ThrowsAsync<RegistryException>(() => _registry.ImportAsync([Device("B1", idevid)], "test", Ct));

        Assert.Equal(RegistryException.CertificateConflict, ex.Code);
        Assert.Null(await _registry.FindAsync("B1", Ct));
    }

    [Fact]
    public async Task AddCertificate_ActivatesDevice_AndAppearsOnAllowList()
    {
        await _registry.ImportAsync([Device("A1")], "test", Ct);
        var v0 = await _registry.GetVersionAsync(Ct);
        var cert = Certificate("A1");

        await _registry.AddCertificateAsync(cert, "issuer", Ct);

        Assert.Equal(DeviceLifecycleState.Active, (await _registry.FindAsync("A1", Ct))!.State);
        Assert.True(await _registry.GetVersionAsync(Ct) > v0);
        var entry = Assert.Single((await _registry.LoadAllowListChangesAsync(-1, Ct)).Entries);
        Assert.Equal(CertificateHash.Parse(cert.Sha256), entry.CertificateHash);
        Assert.Equal(cert.NotAfter.UtcTicks, entry.NotAfterUtcTicks);
        Assert.False(entry.CertificateRevoked);
        var history = await _registry.GetHistoryAsync("A1", Ct);
        Assert.Equal([DeviceLifecycleState.Provisioned, DeviceLifecycleState.Active], history.Select(h => h.To).ToArray());
    }

    [Fact]
    public async Task Revoke_RecordsActorAndReason_RevokesCertificates_AndIsTerminalButForDecommission()
    {
        await _registry.ImportAsync([Device("A1")], "test", Ct);
        await _registry.AddCertificateAsync(Certificate("A1"), "issuer", Ct);

        await _registry.TransitionAsync("A1", DeviceLifecycleState.Revoked, "soc:kim", "lost at a military site", Ct);

        var entry = Assert.Single((await _registry.LoadAllowListChangesAsync(-1, Ct)).Entries);
        Assert.Equal(DeviceLifecycleState.Revoked, entry.State);
        Assert.True(entry.CertificateRevoked);
        var last = (await _registry.GetHistoryAsync("A1", Ct))[^1];
        Assert.Equal(("soc:kim", "lost at a military site", DeviceLifecycleState.Active), (last.Actor, last.Reason, last.From!.Value));

        var back = await Assert.ThrowsAsync<RegistryException>(() => _registry.TransitionAsync("A1", DeviceLifecycleState.Active, "x", "oops", Ct));
        Assert.Equal(RegistryException.TransitionNotAllowed, back.Code);
        var issue = await Assert.ThrowsAsync<RegistryException>(() => _registry.AddCertificateAsync(Certificate("A1"), "issuer", Ct));
        Assert.Equal(RegistryException.TransitionNotAllowed, issue.Code);
        await _registry.TransitionAsync("A1", DeviceLifecycleState.Decommissioned, "x", "retired", Ct);
    }

    [Fact]
    public async Task Changes_SinceAVersion_AreExactlyTheEntriesWrittenAfterIt_WithTheirVersions()
    {
        await _registry.ImportAsync([Device("A1"), Device("A2")], "test", Ct);
        var a1 = Certificate("A1");
        var a2 = Certificate("A2");
        await _registry.AddCertificateAsync(a1, "issuer", Ct);
        await _registry.AddCertificateAsync(a2, "issuer", Ct);
        var all = await _registry.LoadAllowListChangesAsync(-1, Ct);
        Assert.Equal(2, all.Entries.Count);
        Assert.Equal(await _registry.GetVersionAsync(Ct), all.Version);

        await _registry.TransitionAsync("A2", DeviceLifecycleState.Suspended, "soc", "investigation", Ct);
        var changes = await _registry.LoadAllowListChangesAsync(all.Version, Ct);
        var changed = Assert.Single(changes.Entries);
        Assert.Equal(("A2", DeviceLifecycleState.Suspended, changes.Version), (changed.DeviceSerial, changed.State, changed.Version));
        Assert.Empty((await _registry.LoadAllowListChangesAsync(changes.Version, Ct)).Entries);

        var found = await _registry.FindAllowListEntryAsync(CertificateHash.Parse(a1.Sha256), Ct);
        Assert.Equal("A1", found!.DeviceSerial);
        Assert.True(found.Version < changes.Version);
        Assert.Null(await _registry.FindAllowListEntryAsync(CertificateHash.Of([1, 2, 3]), Ct));
    }

    [Fact]
    public async Task Transition_UnknownDeviceOrMissingReason_IsRefused()
    {
        var unknown = await Assert.ThrowsAsync<RegistryException>(() => _registry.TransitionAsync("NOPE", DeviceLifecycleState.Suspended, "x", "why", Ct));
        Assert.Equal(RegistryException.DeviceNotFound, unknown.Code);
        await _registry.ImportAsync([Device("A1")], "test", Ct);
        var noReason = await Assert.ThrowsAsync<RegistryException>(() => _registry.TransitionAsync("A1", DeviceLifecycleState.Suspended, "x", " ", Ct));
        Assert.Equal(RegistryException.InvalidInput, noReason.Code);
    }

    [Fact]
    public async Task ListAsync_FiltersByState()
    {
        await _registry.ImportAsync([Device("A1"), Device("A2")], "test", Ct);
        await _registry.TransitionAsync("A2", DeviceLifecycleState.Suspended, "x", "idle", Ct);

        var suspended = await _registry.ListAsync(DeviceLifecycleState.Suspended, Ct);

        Assert.Equal("A2", Assert.Single(suspended).Serial);
    }

    [Fact]
    public async Task Reopen_KeepsDataAndSchema_AndSecondWriterIsSeen()
    {
        await _registry.ImportAsync([Device("A1")], "test", Ct);
        var other = new SqliteDeviceRegistry(_temp.Combine("data", "registry.db"), TimeProvider.System);

        await other.TransitionAsync("A1", DeviceLifecycleState.Suspended, "ztctl", "maintenance", Ct);

        Assert.Equal(DeviceLifecycleState.Suspended, (await _registry.FindAsync("A1", Ct))!.State);
        Assert.Equal(await other.GetVersionAsync(Ct), await _registry.GetVersionAsync(Ct));
    }

    [Fact]
    public void Open_FileThatIsNotADatabase_FailsClearly()
    {
        var path = _temp.Combine("garbage.db");
        File.WriteAllText(path, new string('x', 4096));

        Assert.Throws<Microsoft.Data.Sqlite.SqliteException>(() => new SqliteDeviceRegistry(path, TimeProvider.System));
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _temp.Dispose();
    }
}
