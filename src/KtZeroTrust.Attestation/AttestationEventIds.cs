namespace KtZeroTrust.Attestation;

/// <summary>Log event ids of attestation and enrollment (2000-2999). Never reuse a number.</summary>
internal static class AttestationEventIds
{
    public const int AttestationFailed = 2000;
    public const int Enrolled = 2001;
    public const int OcspAnswered = 2010;
    public const int OcspRegistryFailed = 2011;
    public const int CmpRefused = 2020;
    public const int CmpStoreFailed = 2021;
    public const int EnrollmentStoreFailed = 2030;
}
