namespace KtZeroTrust.Core.Devices;

/// <summary>A device as the registry knows it.</summary>
public sealed record DeviceRecord
{
    public required string Serial { get; init; }
    public required string Model { get; init; }
    public required DeviceLifecycleState State { get; init; }
    public string? Site { get; init; }

    /// <summary>SHA-256 (hex) of the factory identity certificate, when the manifest carried one.</summary>
    public string? IDevIdSha256 { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }

    /// <summary>From the last passing attestation: what the unit ran (rollback check) and its boot counter.</summary>
    public string? LastFirmwareVersion { get; init; }
    public long? LastBootCounter { get; init; }
    public DateTimeOffset? LastAttestedAt { get; init; }
}

/// <summary>An operational certificate (LDevID) issued to a device.</summary>
public sealed record DeviceCertificateRecord
{
    public required string Sha256 { get; init; }
    public required string DeviceSerial { get; init; }
    public required string CertificateSerialNumber { get; init; }
    public required DateTimeOffset NotBefore { get; init; }
    public required DateTimeOffset NotAfter { get; init; }
    public required DateTimeOffset IssuedAt { get; init; }

    /// <summary>SHA-256 (hex) of the certificate's SubjectPublicKeyInfo: one key belongs to one device, whatever issued it.</summary>
    public required string PublicKeySha256 { get; init; }

    public DateTimeOffset? RevokedAt { get; init; }

    /// <summary>Why it stopped being valid: <c>revoked</c>, <c>superseded</c> (re-enrollment).</summary>
    public string? RevocationReason { get; init; }
}

/// <summary>One recorded lifecycle transition, with who did it and why.</summary>
public sealed record LifecycleTransitionRecord
{
    public required string DeviceSerial { get; init; }
    public DeviceLifecycleState? From { get; init; }
    public required DeviceLifecycleState To { get; init; }
    public required string Actor { get; init; }
    public required string Reason { get; init; }
    public required DateTimeOffset At { get; init; }
}

/// <summary>A device to import from a manufacturing manifest.</summary>
public sealed record ManifestDevice
{
    public required string Serial { get; init; }
    public required string Model { get; init; }
    public string? Site { get; init; }
    public string? IDevIdSha256 { get; init; }
}
