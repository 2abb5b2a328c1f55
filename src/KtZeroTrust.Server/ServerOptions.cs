namespace KtZeroTrust.Server;

/// <summary>
/// The server's own settings. Bound from the <c>ZeroTrust</c> section; every default is the embedded one. The node's
/// name and data directory are <see cref="KtZeroTrust.Hosting.Node.NodeOptions"/>, bound from the same section.
/// </summary>
public sealed class ServerOptions
{
    public const string SectionName = "ZeroTrust";

    public RoleOptions Roles { get; set; } = new();
    public ListenersOptions Listeners { get; set; } = new();
    public ServerPkiOptions Pki { get; set; } = new();
    public DemoUpstreamOptions DemoUpstream { get; set; } = new();
    public TransportOptions Transport { get; set; } = new();
}

/// <summary>Socket transport tuning (bench/README.md has the measurements behind each setting).</summary>
public sealed class TransportOptions
{
    /// <summary>
    /// Run request processing and socket completions on the socket I/O threads instead of queueing each step to the
    /// thread pool (Kestrel's <c>UnsafePreferInlineScheduling</c> and the runtime's
    /// <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS</c>): fewer thread hand-offs per proxied request. Only for code
    /// that never blocks a thread, which holds for the gateway's paths; enrollment and the console use SQLite and
    /// certificate signing, which would stall an I/O thread. Default (unset): on when the process plays the gateway
    /// role alone, off otherwise.
    /// </summary>
    public bool? InlineScheduling { get; set; }

    public bool InlineSchedulingFor(RoleOptions roles)
    {
        ArgumentNullException.ThrowIfNull(roles);
        return InlineScheduling ?? (roles.Gateway && !roles.Attestation && !roles.Console);
    }
}

/// <summary>Which roles this process plays. All three by default (the embedded deployment).</summary>
public sealed class RoleOptions
{
    /// <summary>Device and user gateway listeners.</summary>
    public bool Gateway { get; set; } = true;

    /// <summary>Enrollment and attestation listener.</summary>
    public bool Attestation { get; set; } = true;

    /// <summary>Console and admin API listener.</summary>
    public bool Console { get; set; } = true;
}

public sealed class ListenersOptions
{
    /// <summary>Device gateway: TLS, client certificate from the operator device CA required. Default port 8443.</summary>
    public ListenerOptions Device { get; set; } = new() { Port = 8443 };

    /// <summary>Enrollment and attestation: TLS, client certificate optional. Default port 8444.</summary>
    public ListenerOptions Enrollment { get; set; } = new() { Port = 8444 };

    /// <summary>User gateway: TLS, OIDC bearer tokens. Default port 9443.</summary>
    public ListenerOptions User { get; set; } = new() { Port = 9443 };

    /// <summary>SOC console and admin API: TLS. Default port 9444.</summary>
    public ListenerOptions Console { get; set; } = new() { Port = 9444 };
}

public sealed class ListenerOptions
{
    /// <summary><c>localhost</c> (both loopbacks, the default), <c>*</c> (every interface) or an IP address.</summary>
    public string Address { get; set; } = "localhost";

    public int Port { get; set; }
}

public sealed class ServerPkiOptions
{
    /// <summary>Directory of the PKI files (layout in certs-dev/README.md). Default <c>certs-dev</c>.</summary>
    public string Directory { get; set; } = "certs-dev";

    /// <summary>In Development only: create the development PKI, import its manifest and issue sample certificates on first start. Default true.</summary>
    public bool GenerateDevelopmentPki { get; set; } = true;

    /// <summary>Optional overrides of the individual files; default to the directory layout.</summary>
    public string? ServerCertificate { get; set; }
    public string? ServerKey { get; set; }
    public string? OperatorCaCertificate { get; set; }
    public string? OperatorCaKey { get; set; }
    public string? VendorRootCertificate { get; set; }
}

/// <summary>The built-in demo upstream (a femtocell management endpoint that echoes the identity it received).</summary>
public sealed class DemoUpstreamOptions
{
    /// <summary>Default true: the embedded run shows the whole path. Turn off in production.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Plain HTTP on 127.0.0.1 only. Default 8480.</summary>
    public int Port { get; set; } = 8480;
}
