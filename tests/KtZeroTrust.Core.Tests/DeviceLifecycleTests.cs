using KtZeroTrust.Core.Devices;

namespace KtZeroTrust.Core.Tests;

public sealed class DeviceLifecycleTests
{
    [Theory]
    [InlineData(DeviceLifecycleState.Provisioned, DeviceLifecycleState.Active, true)]
    [InlineData(DeviceLifecycleState.Active, DeviceLifecycleState.Suspended, true)]
    [InlineData(DeviceLifecycleState.Suspended, DeviceLifecycleState.Active, true)]
    [InlineData(DeviceLifecycleState.Suspended, DeviceLifecycleState.Revoked, true)]
    [InlineData(DeviceLifecycleState.Active, DeviceLifecycleState.Revoked, true)]
    [InlineData(DeviceLifecycleState.Revoked, DeviceLifecycleState.Decommissioned, true)]
    [InlineData(DeviceLifecycleState.Provisioned, DeviceLifecycleState.Decommissioned, true)]
    [InlineData(DeviceLifecycleState.Revoked, DeviceLifecycleState.Active, false)]
    [InlineData(DeviceLifecycleState.Revoked, DeviceLifecycleState.Suspended, false)]
    [InlineData(DeviceLifecycleState.Decommissioned, DeviceLifecycleState.Active, false)]
    [InlineData(DeviceLifecycleState.Decommissioned, DeviceLifecycleState.Decommissioned, false)]
    [InlineData(DeviceLifecycleState.Active, DeviceLifecycleState.Provisioned, false)]
    [InlineData(DeviceLifecycleState.Active, DeviceLifecycleState.Active, false)]
    public void CanTransition_FollowsTheStateMachine(DeviceLifecycleState from, DeviceLifecycleState to, bool allowed)
        => Assert.Equal(allowed, DeviceLifecycle.CanTransition(from, to));

    [Theory]
    [InlineData("active", true)]
    [InlineData("Revoked", true)]
    [InlineData("1", false)]
    [InlineData("-1", false)]
    [InlineData("", false)]
    [InlineData("lost", false)]
    public void TryParse_AcceptsNamesOnly(string text, bool ok)
        => Assert.Equal(ok, DeviceLifecycle.TryParse(text, out _));

    [Theory]
    [InlineData("FC-0001", true)]
    [InlineData("a.b-c", true)]
    [InlineData("", false)]
    [InlineData("-lead", false)]
    [InlineData("has space", false)]
    [InlineData("../etc/passwd", false)]
    [InlineData("under_score", false)]
    [InlineData("ünicode", false)]
    public void DeviceSerial_IsValid_UsesConservativeAlphabet(string serial, bool ok)
    {
        Assert.Equal(ok, DeviceSerial.IsValid(serial));
        Assert.False(DeviceSerial.IsValid(new string('A', DeviceSerial.MaxLength + 1)));
    }
}
