using KtZeroTrust.Core.Decisions;

namespace KtZeroTrust.Core.Attestation;

/// <summary>An enrollment or attestation request refused for a stated reason; becomes a 4xx problem and a decision.</summary>
public sealed class EnrollmentException(ReasonCode reason, string message, int status = 400) : Exception(message)
{
    public ReasonCode Reason { get; } = reason;

    /// <summary>The HTTP status to answer with.</summary>
    public int Status { get; } = status;
}
