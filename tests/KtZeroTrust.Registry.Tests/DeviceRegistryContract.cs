using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Core.Attestation;
using KtZeroTrust.Registry.Postgres;
using KtZeroTrust.Registry.Sqlite;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Registry.Tests;

/// <summary>
/// The store test suite: every registry store (SQLite, PostgreSQL) must pass all of it. A derived class supplies a
/// fresh, empty store per test and a second client on the same store.
/// </summary>
public abstract class DeviceRegistryContract : IAsyncLifetime
{
    private IDeviceRegistry _registry = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A fresh, empty store.</summary>
    protected abstract Task<IDeviceRegistry> CreateAsync();

    /// <summary>A second client of the same store (another process, in real life).</summary>
    protected abstract Task<IDeviceRegistry> OpenSecondAsync();

    public async ValueTask InitializeAsync() => _registry = await CreateAsync();

    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    private static ManifestDevice Device(string serial, string? idevid = null) => new() { Serial = serial, Model = "M1", Site = "site-1", IDevIdSha256 = idevid };

    private static DeviceCertificateRecord Certificate(string serial, DateTimeOffset? notAfter = null) => new()
    {
        Sha256 = CertificateHash.Of(Guid.NewGuid().ToByteArray()).ToString(),
        DeviceSerial = serial,
        CertificateSerialNumber = "01",
        NotBefore = DateTimeOffset.UtcNow.AddMinutes(-1),
        NotAfter = notAfter ?? DateTimeOffset.UtcNow.AddDays(1),
        IssuedAt = DateTimeOffset.UtcNow,
        PublicKeySha256 = CertificateHash.Of(Guid.NewGuid().ToByteArray()).ToString(),
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
        Assert.Null(entry.StateReason); // only a non-active state carries its cause
        var history = await _registry.GetHistoryAsync("A1", Ct);
        Assert.Equal([DeviceLifecycleState.Provisioned, DeviceLifecycleState.Active], history.Select(h => h.To).ToArray());
    }

    [Fact]
    public async Task AddCertificate_RecordsTheKeyHash_AndRefusesAKeyOfAnotherDevice_AsEnrollmentDoes()
    {
        await _registry.ImportAsync([Device("A1"), Device("A2")], "test", Ct);
        var key = new string('7', 64);
        await _registry.AddCertificateAsync(Certificate("A1") with { PublicKeySha256 = key }, "ztctl", Ct);

        Assert.Equal("A1", await _registry.FindSerialByPublicKeyAsync(key, Ct));
        Assert.Equal(key, Assert.Single(await _registry.GetCertificatesAsync("A1", Ct)).PublicKeySha256);
        var shared = await Assert.ThrowsAsync<RegistryException>(() => _registry.AddCertificateAsync(Certificate("A2") with { PublicKeySha256 = key }, "ztctl", Ct));
        Assert.Equal(RegistryException.KeyShared, shared.Code);
        Assert.Empty(await _registry.GetCertificatesAsync("A2", Ct));
        var missing = await Assert.ThrowsAsync<RegistryException>(() => _registry.AddCertificateAsync(Certificate("A2") with { PublicKeySha256 = "" }, "ztctl", Ct));
        Assert.Equal(RegistryException.InvalidInput, missing.Code);
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
        Assert.Equal("soc:kim: lost at a military site", entry.StateReason); // a denial can say why
        Assert.Equal(entry, await _registry.FindAllowListEntryAsync(entry.CertificateHash, Ct));
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
        var other = await OpenSecondAsync();

        await other.TransitionAsync("A1", DeviceLifecycleState.Suspended, "ztctl", "maintenance", Ct);

        Assert.Equal(DeviceLifecycleState.Suspended, (await _registry.FindAsync("A1", Ct))!.State);
        Assert.Equal(await other.GetVersionAsync(Ct), await _registry.GetVersionAsync(Ct));
    }

    [Fact]
    public async Task ReferenceValues_AttestationsAndEnrollment_WorkAsOneTransaction()
    {
        await _registry.ImportReferenceValuesAsync(new ReferenceValues
        {
            Sites = [new Site { Id = "site-1", Latitude = 37.5, Longitude = 127.0, RadiusMeters = 300, NeighbourCells = ["c1", "c2"], AllowedPrefixes = ["10.0.0.0/8"] }],
            Firmware = [new FirmwareReference { Model = "M1", Version = "1.2.3", Sha256 = new string('b', 64) }],
            Models = [new ModelPolicy { Model = "M1", MinimumVersion = "1.0.0", ForbiddenFlags = ["ssh_enabled"] }],
        }, "test", Ct);
        var site = await _registry.FindSiteAsync("site-1", Ct);
        Assert.Equal((37.5, 300.0, 2), (site!.Latitude, site.RadiusMeters, site.NeighbourCells.Count));
        Assert.Equal("1.2.3", Assert.Single(await _registry.GetFirmwareAsync("M1", Ct)).Version);
        Assert.Equal("1.0.0", (await _registry.FindModelPolicyAsync("M1", Ct))!.MinimumVersion);
        Assert.Null(await _registry.FindSiteAsync("nowhere", Ct));

        await _registry.ImportAsync([Device("A1"), Device("A2")], "test", Ct);
        var now = DateTimeOffset.UtcNow;
        await _registry.RecordAttestationAsync(Attestation("att-1", "A1", "nonce-1", now), Ct);
        await _registry.RecordAttestationAsync(Attestation("att-bad", "A1", "nonce-2", now) with { Passed = false, Reasons = ["firmware_unknown"] }, Ct);
        Assert.Null(await _registry.FindUsableAttestationAsync("A1", "nonce-2", now, Ct)); // failed ones are never usable
        Assert.Equal("att-1", (await _registry.FindUsableAttestationAsync("A1", "nonce-1", now, Ct))!.Id);
        Assert.Equal("5.0.0", (await _registry.FindAsync("A1", Ct))!.LastFirmwareVersion);
        await _registry.RecordAttestationAsync(Attestation("att-later", "A1", "nonce-9", now.AddSeconds(1)) with { Passed = false, Reasons = ["nonce_invalid"] }, Ct);
        Assert.Equal(["att-later"], (await _registry.GetAttestationsAsync("A1", 1, Ct)).Select(a => a.Id)); // newest first, limited
        Assert.Equal(3, (await _registry.GetAttestationsAsync("A1", 10, Ct)).Count);
        Assert.Equal(["firmware_unknown"], (await _registry.GetAttestationsAsync("A1", 10, Ct)).Single(a => a.Id == "att-bad").Reasons);
        Assert.Empty(await _registry.GetAttestationsAsync("A2", 10, Ct));

        var first = Certificate("A1");
        await _registry.EnrollAsync(new EnrollmentCommit { AttestationId = "att-1", Certificate = first with { PublicKeySha256 = new string('1', 64) } }, "est", now, Ct);
        Assert.Equal(DeviceLifecycleState.Active, (await _registry.FindAsync("A1", Ct))!.State);
        Assert.Null(await _registry.FindUsableAttestationAsync("A1", "nonce-1", now, Ct)); // consumed
        var reuse = await Assert.ThrowsAsync<RegistryException>(() => _registry.EnrollAsync(
            new EnrollmentCommit { AttestationId = "att-1", Certificate = Certificate("A1") with { PublicKeySha256 = new string('2', 64) } }, "est", now, Ct));
        Assert.Equal(RegistryException.AttestationUnusable, reuse.Code);

        // Another device presenting the same key: refused, and nothing of that enrollment is written.
        await _registry.RecordAttestationAsync(Attestation("att-2", "A2", "nonce-3", now), Ct);
        var shared = await Assert.ThrowsAsync<RegistryException>(() => _registry.EnrollAsync(
            new EnrollmentCommit { AttestationId = "att-2", Certificate = Certificate("A2") with { PublicKeySha256 = new string('1', 64) } }, "est", now, Ct));
        Assert.Equal(RegistryException.KeyShared, shared.Code);
        Assert.Empty(await _registry.GetCertificatesAsync("A2", Ct));
        Assert.NotNull(await _registry.FindUsableAttestationAsync("A2", "nonce-3", now, Ct)); // rolled back, still usable
        Assert.Equal("A1", await _registry.FindSerialByPublicKeyAsync(new string('1', 64), Ct));

        // Re-enrollment supersedes the previous certificate; revocation marks the rest; the CRL source lists both.
        await _registry.RecordAttestationAsync(Attestation("att-3", "A1", "nonce-4", now), Ct);
        var second = Certificate("A1");
        await _registry.EnrollAsync(new EnrollmentCommit { AttestationId = "att-3", Certificate = second with { PublicKeySha256 = new string('3', 64) } }, "est", now, Ct);
        var certificates = await _registry.GetCertificatesAsync("A1", Ct);
        Assert.Equal("superseded", certificates.Single(c => c.Sha256 == first.Sha256).RevocationReason);
        Assert.Null(certificates.Single(c => c.Sha256 == second.Sha256).RevokedAt);
        await _registry.TransitionAsync("A1", DeviceLifecycleState.Revoked, "soc", "stolen", Ct);
        var revoked = await _registry.GetRevokedCertificatesAsync(Ct);
        Assert.Equal(["revoked", "superseded"], revoked.Select(r => r.Reason).Order());
    }

    private static AttestationRecord Attestation(string id, string serial, string nonce, DateTimeOffset now) => new()
    {
        Id = id,
        Serial = serial,
        Nonce = nonce,
        Passed = true,
        FirmwareVersion = "5.0.0",
        BootCounter = 3,
        Latitude = 37.5,
        Longitude = 127.0,
        At = now,
        ExpiresAt = now.AddMinutes(10),
    };
}

public sealed class SqliteDeviceRegistryTests : DeviceRegistryContract
{
    private readonly TempDirectory _temp = new();

    private string Path => _temp.Combine("data", "registry.db");

    protected override Task<IDeviceRegistry> CreateAsync() => Task.FromResult<IDeviceRegistry>(new SqliteDeviceRegistry(Path, TimeProvider.System));

    protected override Task<IDeviceRegistry> OpenSecondAsync() => CreateAsync();

    [Fact]
    public async Task Backfill_FillsKeyHashesOfRowsRecordedWithout_AndReportsAKeyBoundToTwoDevices()
    {
        var registry = new SqliteDeviceRegistry(Path, TimeProvider.System);
        await registry.ImportAsync([new ManifestDevice { Serial = "B1", Model = "M1" }, new ManifestDevice { Serial = "B2", Model = "M1" }], "test", TestContext.Current.CancellationToken);
        using var ca = KtZeroTrust.Tests.Common.TestCertificates.CreateCa();
        using var b1 = KtZeroTrust.Tests.Common.TestCertificates.Device(ca, "B1");
        using var key = b1.GetECDsaPrivateKey()!;
        using var b2 = ca.Issue(KtZeroTrust.Pki.Certificates.DeviceCertificates.Subject("B2", "Test"), new System.Security.Cryptography.X509Certificates.PublicKey(key),
            KtZeroTrust.Pki.Certificates.CertificateUsage.ClientAuth, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1));
        foreach (var (serial, cert) in new[] { ("B1", b1), ("B2", b2) })
        {
            await registry.AddCertificateAsync(new DeviceCertificateRecord
            {
                Sha256 = CertificateHash.Of(cert).ToString(), DeviceSerial = serial, CertificateSerialNumber = cert.SerialNumber,
                NotBefore = cert.NotBefore, NotAfter = cert.NotAfter, IssuedAt = DateTimeOffset.UtcNow, PublicKeySha256 = new string(serial == "B1" ? 'a' : 'b', 64),
            }, "test", TestContext.Current.CancellationToken);
        }

        // As the rows of the previous release were: no key hash.
        await using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path}"))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var cmd = connection.CreateCommand();
            cmd.CommandText = "UPDATE device_certificates SET spki_sha256 = NULL;";
            await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        var (filled, shared) = await registry.BackfillPublicKeysAsync([b1, b2], TestContext.Current.CancellationToken);

        Assert.Equal(2, filled);
        Assert.Equal(PublicKeyHash.Hex(b1.PublicKey), Assert.Single(shared));
        Assert.Equal(PublicKeyHash.Hex(b1.PublicKey), Assert.Single(await registry.GetCertificatesAsync("B1", TestContext.Current.CancellationToken)).PublicKeySha256);
        Assert.Equal(0, (await registry.BackfillPublicKeysAsync([b1], TestContext.Current.CancellationToken)).Filled); // idempotent
    }

    [Fact]
    public void Open_FileThatIsNotADatabase_FailsClearly()
    {
        var path = _temp.Combine("garbage.db");
        File.WriteAllText(path, new string('x', 4096));

        Assert.Throws<Microsoft.Data.Sqlite.SqliteException>(() => new SqliteDeviceRegistry(path, TimeProvider.System));
    }

    public override async ValueTask DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _temp.Dispose();
        await base.DisposeAsync();
    }
}

/// <summary>The same suite against a real PostgreSQL server started for the test class.</summary>
public sealed class PostgresDeviceRegistryTests(PostgresServerFixture postgres) : DeviceRegistryContract, IClassFixture<PostgresServerFixture>
{
    private readonly List<PostgresDeviceRegistry> _opened = [];
    private string? _connectionString;

    protected override async Task<IDeviceRegistry> CreateAsync()
    {
        _connectionString = await postgres.CreateDatabaseAsync();
        return await OpenSecondAsync();
    }

    protected override async Task<IDeviceRegistry> OpenSecondAsync()
    {
        var registry = await PostgresDeviceRegistry.ConnectAsync(_connectionString!, TimeProvider.System);
        _opened.Add(registry);
        return registry;
    }

    public override async ValueTask DisposeAsync()
    {
        foreach (var registry in _opened)
        {
            await registry.DisposeAsync();
        }

        await base.DisposeAsync();
    }
}
