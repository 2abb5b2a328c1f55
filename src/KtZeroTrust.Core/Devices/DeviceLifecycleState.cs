namespace KtZeroTrust.Core.Devices;

/// <summary>Where a device is in its life. Stored by name; never renumber.</summary>
public enum DeviceLifecycleState
{
    /// <summary>Imported from the manufacturing manifest; not yet allowed on the network.</summary>
    Provisioned = 0,

    /// <summary>Enrolled; its operational certificates may pass the gateway.</summary>
    Active = 1,

    /// <summary>Temporarily cut off by an operator or a detector; may return to Active.</summary>
    Suspended = 2,

    /// <summary>Cut off for good (lost, stolen, cloned); only decommissioning follows.</summary>
    Revoked = 3,

    /// <summary>Retired. Terminal.</summary>
    Decommissioned = 4,
}

/// <summary>The lifecycle state machine: which transitions are allowed.</summary>
public static class DeviceLifecycle
{
    public static bool CanTransition(DeviceLifecycleState from, DeviceLifecycleState to) => (from, to) switch
    {
        (DeviceLifecycleState.Decommissioned, _) => false,
        (_, DeviceLifecycleState.Decommissioned) => true,
        (DeviceLifecycleState.Provisioned, DeviceLifecycleState.Active) => true,
        (DeviceLifecycleState.Provisioned, DeviceLifecycleState.Suspended) => true,
        (DeviceLifecycleState.Provisioned, DeviceLifecycleState.Revoked) => true,
        (DeviceLifecycleState.Active, DeviceLifecycleState.Suspended) => true,
        (DeviceLifecycleState.Active, DeviceLifecycleState.Revoked) => true,
        (DeviceLifecycleState.Suspended, DeviceLifecycleState.Active) => true,
        (DeviceLifecycleState.Suspended, DeviceLifecycleState.Revoked) => true,
        _ => false,
    };

    /// <summary>Parses a state name case-insensitively; false for anything else (numbers included).</summary>
    public static bool TryParse(string? value, out DeviceLifecycleState state)
    {
        state = default;
        return !string.IsNullOrWhiteSpace(value)
            && !char.IsAsciiDigit(value[0]) && value[0] != '-'
            && Enum.TryParse(value, ignoreCase: true, out state)
            && Enum.IsDefined(state);
    }
}
