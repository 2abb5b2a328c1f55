using KtZeroTrust.Hosting.Listeners;

namespace KtZeroTrust.Gateway.Enforcement;

/// <summary>Set on a device request once it is allowed; the forwarding transforms read it.</summary>
public sealed class DeviceRequestFeature(string deviceSerial, string decisionId) : IRecordedDecisionFeature
{
    public string DeviceSerial { get; } = deviceSerial;
    public string DecisionId { get; } = decisionId;
}
