using KtZeroTrust.Hosting.Decisions;
using KtZeroTrust.Hosting.Listeners;

namespace KtZeroTrust.Gateway.Identity;

/// <summary>Who is asking, as the policy sees it (taken from the validated token once per request).</summary>
public readonly record struct UserSubject(string Subject, string[] Roles, string[] Groups, string[] Scopes, string[] AuthenticationMethods);

/// <summary>
/// The one identity feature of an allowed request, whichever listener it came on: the device (from its TLS
/// certificate and the allow list) or the user (from the token, with the device whose certificate the user also
/// presented, if any). Set by enforcement once the request is allowed; the forwarding transform turns it into the
/// upstream's identity headers, and its decision id marks the request as recorded.
/// </summary>
public sealed class GatewayIdentityFeature(string decisionId, string? deviceSerial, UserSubject? user = null, string? policyVersion = null, string? assertion = null)
    : IRecordedDecisionFeature
{
    public string DecisionId { get; } = decisionId;

    /// <summary>The device: the requester itself on the device listener, the user's device on the user listener.</summary>
    public string? DeviceSerial { get; } = deviceSerial;

    /// <summary>The user, on the user listener.</summary>
    public UserSubject? User { get; } = user;

    public string? PolicyVersion { get; } = policyVersion;

    /// <summary>The signed gateway assertion for the upstream (user routes).</summary>
    public string? Assertion { get; } = assertion;
}
