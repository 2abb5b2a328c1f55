namespace KtZeroTrust.Core.Decisions;

/// <summary>What a decision is about. The wire names (<see cref="DecisionNames"/>) are the log's schema.</summary>
public enum DecisionKind
{
    /// <summary>A request, handshake or connection judged.</summary>
    Access,

    /// <summary>Attestation evidence judged.</summary>
    Attestation,

    /// <summary>A certificate asked for.</summary>
    Enrollment,

    /// <summary>A device changed state.</summary>
    Lifecycle,

    /// <summary>An operator acted (console, admin API).</summary>
    Admin,

    /// <summary>A detector fired.</summary>
    Alert,

    /// <summary>The node's own state changed (change feed, pipeline).</summary>
    System,
}

/// <summary>Where a decision was made: one of the listeners, or one of the node's own components.</summary>
public enum DecisionListener
{
    Unknown,
    Device,
    Enrollment,
    User,
    Console,

    /// <summary>The gateway's background services (allow-list change feed).</summary>
    Gateway,

    /// <summary>The decision pipeline itself (loss, spool, sink health).</summary>
    Pipeline,

    /// <summary>The fleet detectors reading the stream.</summary>
    Detector,
}

/// <summary>The stable wire names of <see cref="DecisionKind"/> and <see cref="DecisionListener"/>.</summary>
public static class DecisionNames
{
    public static string Name(DecisionKind kind) => kind switch
    {
        DecisionKind.Access => "access",
        DecisionKind.Attestation => "attestation",
        DecisionKind.Enrollment => "enrollment",
        DecisionKind.Lifecycle => "lifecycle",
        DecisionKind.Admin => "admin",
        DecisionKind.Alert => "alert",
        DecisionKind.System => "system",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    public static string Name(DecisionListener listener) => listener switch
    {
        DecisionListener.Device => "device",
        DecisionListener.Enrollment => "enrollment",
        DecisionListener.User => "user",
        DecisionListener.Console => "console",
        DecisionListener.Gateway => "gateway",
        DecisionListener.Pipeline => "pipeline",
        DecisionListener.Detector => "detector",
        _ => "unknown",
    };

    public static bool TryParse(string? name, out DecisionKind kind)
    {
        foreach (var candidate in Enum.GetValues<DecisionKind>())
        {
            if (string.Equals(Name(candidate), name, StringComparison.Ordinal))
            {
                kind = candidate;
                return true;
            }
        }

        kind = DecisionKind.Access;
        return false;
    }

    /// <summary>An unknown name reads as <see cref="DecisionListener.Unknown"/> (a later version's listener).</summary>
    public static DecisionListener ParseListener(string? name)
    {
        foreach (var candidate in Enum.GetValues<DecisionListener>())
        {
            if (string.Equals(Name(candidate), name, StringComparison.Ordinal))
            {
                return candidate;
            }
        }

        return DecisionListener.Unknown;
    }
}
