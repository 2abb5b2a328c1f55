namespace KtZeroTrust.Hosting.Listeners;

/// <summary>Endpoint metadata: the listeners on which an endpoint may be reached.</summary>
public sealed class ListenerMetadata(params ListenerKind[] listeners)
{
    private readonly int _mask = listeners.Aggregate(0, (mask, k) => mask | (1 << (int)k));

    public bool Allows(ListenerKind kind) => (_mask & (1 << (int)kind)) != 0;
}
