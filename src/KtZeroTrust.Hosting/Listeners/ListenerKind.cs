using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;

namespace KtZeroTrust.Hosting.Listeners;

/// <summary>The product's listeners. An endpoint answers only on the listeners it declares.</summary>
public enum ListenerKind
{
    /// <summary>Device gateway: TLS with a client certificate from the operator device CA required.</summary>
    Device,

    /// <summary>Enrollment and attestation: TLS, client certificate optional.</summary>
    Enrollment,

    /// <summary>User gateway: TLS, OIDC bearer tokens.</summary>
    User,

    /// <summary>SOC console and admin API.</summary>
    Console,

    /// <summary>Loopback-only helpers such as the built-in demo upstream.</summary>
    Internal,
}

public static class ListenerContext
{
    /// <summary>Tags on Kestrel's connection measurements: the listener's name, and the peer's endpoint.</summary>
    public const string ListenerTag = "zt.listener";
    public const string PeerTag = "zt.peer";

    // The key object identifies our entry in the connection's Items; the boxed kinds are immutable.
    private static readonly object Key = new();
    private static readonly object[] Boxed = Enum.GetValues<ListenerKind>().Select(k => (object)k).ToArray();

    /// <summary>Tags a connection with the listener it arrived on (called by connection middleware).</summary>
    public static void Set(IDictionary<object, object?> connectionItems, ListenerKind kind)
    {
        ArgumentNullException.ThrowIfNull(connectionItems);
        connectionItems[Key] = Boxed[(int)kind];
    }

    /// <summary>The listener a request arrived on, or null when the connection was not tagged (which denies).</summary>
    public static ListenerKind? Get(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var items = context.Features.Get<IConnectionItemsFeature>()?.Items;
        return items is not null && items.TryGetValue(Key, out var value) && value is ListenerKind kind ? kind : null;
    }

    /// <summary>The listener as decisions name it (<see cref="ListenerKind.Internal"/> is no listener of record).</summary>
    public static KtZeroTrust.Core.Decisions.DecisionListener ForDecision(ListenerKind kind) => kind switch
    {
        ListenerKind.Device => KtZeroTrust.Core.Decisions.DecisionListener.Device,
        ListenerKind.Enrollment => KtZeroTrust.Core.Decisions.DecisionListener.Enrollment,
        ListenerKind.User => KtZeroTrust.Core.Decisions.DecisionListener.User,
        ListenerKind.Console => KtZeroTrust.Core.Decisions.DecisionListener.Console,
        _ => KtZeroTrust.Core.Decisions.DecisionListener.Unknown,
    };

    /// <summary>The kind a <see cref="Name"/> names (the connection tag carries the name); null for any other text.</summary>
    public static ListenerKind? Parse(string name)
    {
        foreach (var kind in Enum.GetValues<ListenerKind>())
        {
            if (Name(kind) == name)
            {
                return kind;
            }
        }

        return null;
    }

    /// <summary>The listener's name on connection tags and in logs: the decisions' name for it ("internal" for the loopback helpers).</summary>
    public static string Name(ListenerKind kind)
        => kind == ListenerKind.Internal ? "internal" : KtZeroTrust.Core.Decisions.DecisionNames.Name(ForDecision(kind));
}
