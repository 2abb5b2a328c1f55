using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Pki.Certificates;
using KtZeroTrust.Pki.DevPki;
using KtZeroTrust.Registry.Sqlite;
using KtZeroTrust.Server;
using KtZeroTrust.Tests.Common;
using Microsoft.AspNetCore.Builder;

namespace KtZeroTrust.Server.Tests;

/// <summary>
/// Runs the real server (all roles, Kestrel over TLS on loopback ports) on a fresh data directory and a development
/// PKI it generates on first start, exactly as the README's run command does.
/// </summary>
public class ServerFixture : IAsyncLifetime
{
    public static readonly string[] Serials = ["FC-0001", "FC-0002", "FC-0003", "FC-0004", "FC-0005", "FC-0006"];

    private readonly TempDirectory _temp = new("ktzt-server");
    private readonly string? _pkiDirectory;
    private readonly string? _registryPath;
    private readonly string[] _extraArguments;
    private WebApplication? _app;

    public ServerFixture()
        : this(null, null, [])
    {
    }

    /// <summary>A node sharing a PKI directory and a registry file with other nodes (multi-node tests).</summary>
    internal ServerFixture(string? pkiDirectory, string? registryPath, string[] extraArguments)
    {
        _pkiDirectory = pkiDirectory;
        _registryPath = registryPath;
        _extraArguments = extraArguments;
    }

    public string RegistryPath => _registryPath ?? Path.Combine(DataDirectory, "registry.db");

    public IServiceProvider Services => _app!.Services;

    public DevPkiLayout Layout { get; private set; } = null!;
    public string DataDirectory => _temp.Combine("data");
    public string DecisionLogPath => Path.Combine(DataDirectory, "decisions.jsonl");
    public string Scratch => _temp.Path;
    public int DevicePort { get; private set; }
    public int EnrollmentPort { get; private set; }
    public int UserPort { get; private set; }

    /// <summary>Ports chosen before start (device, enrollment, user, console, upstream) when a subclass must know them early.</summary>
    protected int[]? Ports { get; init; }
    public int ConsolePort { get; private set; }
    public int UpstreamPort { get; private set; }
    public X509Certificate2 TlsRoot { get; private set; } = null!;

    public virtual async ValueTask InitializeAsync()
    {
        var pkiDir = _pkiDirectory ?? _temp.Combine("pki");
        Layout = await WriteSampleFleetAsync(pkiDir);

        var ports = Ports ?? FreePorts.Next(5);
        DevicePort = ports[0];
        EnrollmentPort = ports[1];
        UserPort = ports[2];
        ConsolePort = ports[3];
        UpstreamPort = ports[4];
        _app = ZeroTrustServer.Build([.. Arguments(pkiDir, DataDirectory, ports, "Development"), $"--ZeroTrust:Registry:SqlitePath={RegistryPath}", .. _extraArguments]);
        await ZeroTrustServer.PrepareAsync(_app);
        await _app.StartAsync();
        TlsRoot = PemFiles.ReadCertificate(Layout.TlsRootCertificate);
    }

    /// <summary>The sample fleet's manifest and reference values in <paramref name="pkiDir"/> (kept when already there).</summary>
    protected static async Task<DevPkiLayout> WriteSampleFleetAsync(string pkiDir)
    {
        Directory.CreateDirectory(pkiDir);
        var layout = new DevPkiLayout(pkiDir);
        if (!File.Exists(layout.ReferenceValues))
        {
            await File.WriteAllTextAsync(layout.ReferenceValues, JsonSerializer.Serialize(TestReference.Values, new JsonSerializerOptions(JsonSerializerDefaults.Web)));
        }

        if (!File.Exists(layout.Manifest))
        {
            await File.WriteAllTextAsync(layout.Manifest, JsonSerializer.Serialize(new
            {
                vendor = "Test vendor",
                devices = Serials.Select(s => new { serial = s, model = "KTF-HNB-5G", site = "test-site", idevidCertificate = $"idevid/{s}.pem" }),
            }));
        }

        return layout;
    }

    public static string[] Arguments(string pkiDir, string dataDir, int[] ports, string environment) =>
    [
        $"--environment={environment}",
        $"--ZeroTrust:DataDirectory={dataDir}",
        $"--ZeroTrust:Pki:Directory={pkiDir}",
        "--ZeroTrust:Listeners:Device:Address=127.0.0.1", $"--ZeroTrust:Listeners:Device:Port={ports[0]}",
        "--ZeroTrust:Listeners:Enrollment:Address=127.0.0.1", $"--ZeroTrust:Listeners:Enrollment:Port={ports[1]}",
        "--ZeroTrust:Listeners:User:Address=127.0.0.1", $"--ZeroTrust:Listeners:User:Port={ports[2]}",
        "--ZeroTrust:Listeners:Console:Address=127.0.0.1", $"--ZeroTrust:Listeners:Console:Port={ports[3]}",
        $"--ZeroTrust:DemoUpstream:Port={ports[4]}",
        $"--ReverseProxy:Clusters:femto-management:Destinations:demo:Address=http://127.0.0.1:{ports[4]}/",
        $"--ReverseProxy:Clusters:payments:Destinations:demo:Address=http://127.0.0.1:{ports[4]}/",
        $"--ReverseProxy:Clusters:subscribers:Destinations:demo:Address=http://127.0.0.1:{ports[4]}/",
        $"--ReverseProxy:Clusters:network:Destinations:demo:Address=http://127.0.0.1:{ports[4]}/",
        "--ZeroTrust:AllowList:RegistryPollInterval=00:00:00.100",
        // Room for every test's concurrent enrollments (the default, 4 per core, would defer them for 10-20 s each);
        // the admission tests set their own small limit.
        "--ZeroTrust:Attestation:Admission:MaxInFlight=64",
        "--Logging:LogLevel:Default=Warning",
    ];

    public Uri DeviceUri(string path) => new($"https://127.0.0.1:{DevicePort}{path}");

    public Uri EnrollmentUri(string path) => new($"https://{EnrollmentHost}:{EnrollmentPort}{path}");

    /// <summary>The address the enrollment listener is reached at (loopback, unless a subclass binds it elsewhere).</summary>
    public virtual string EnrollmentHost => "127.0.0.1";

    public Uri ConsoleUri(string path) => new($"https://127.0.0.1:{ConsolePort}{path}");

    /// <summary>A client of the admin API that trusts only the dev TLS root; with <paramref name="cookies"/>, it keeps them as a browser does.</summary>
    public HttpClient ConsoleClient(System.Net.CookieContainer? cookies = null) => new(new SocketsHttpHandler
    {
        CookieContainer = cookies ?? new System.Net.CookieContainer(),
        UseCookies = cookies is not null,
        SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => ValidateServer(c) },
    });

    /// <summary>A new console account, its one-time password replaced, as a bearer-token client.</summary>
    public async Task<HttpClient> SignedInConsoleAsync(string name, string role)
    {
        var password = await Services.GetRequiredService<KtZeroTrust.SocConsole.Accounts.ConsoleUsers>().AddAsync(name, role, TestContext.Current.CancellationToken);
        var client = ConsoleClient();
        using (var first = await client.PostAsJsonAsync(ConsoleUri("/api/login"), new { user = name, password }, TestContext.Current.CancellationToken))
        {
            Assert.Equal(System.Net.HttpStatusCode.Forbidden, first.StatusCode); // one-time password: must be replaced
        }

        using var login = await client.PostAsJsonAsync(ConsoleUri("/api/login"), new { user = name, password, newPassword = $"{name}-new-password" }, TestContext.Current.CancellationToken);
        login.EnsureSuccessStatusCode();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer",
            (await login.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("token").GetString());
        return client;
    }

    public X509Certificate2 FactoryCertificate(string serial)
        => PemFiles.ReadCertificateWithKey(Layout.IDevIdCertificate(serial), Layout.IDevIdKey(serial));

    /// <summary>The registry file the server uses, opened as a second client (the way ztctl reaches it).</summary>
    public SqliteDeviceRegistry OpenRegistry() => new(RegistryPath, TimeProvider.System);

    public X509Certificate2 SampleCertificate(string serial)
        => PemFiles.ReadCertificateWithKey(Layout.LDevIdCertificate(serial), Layout.LDevIdKey(serial));

    public CertificateAuthority OperatorCa()
        => new(PemFiles.ReadCertificateWithKey(Layout.OperatorCaCertificate, Layout.OperatorCaKey));

    /// <summary>An HttpClient on a fresh connection that presents <paramref name="clientCertificate"/> and trusts only the dev TLS root.</summary>
    public HttpClient DeviceClient(X509Certificate2? clientCertificate, Version? version = null, System.Net.IPAddress? localAddress = null)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = clientCertificate is null ? null : new X509CertificateCollection { clientCertificate },
                LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate!,
                RemoteCertificateValidationCallback = (_, certificate, _, _) => ValidateServer(certificate),
            },
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
        };
        if (localAddress is not null)
        {
            // Another source address (127.0.0.2 stands for a second site).
            handler.ConnectCallback = async (context, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                socket.Bind(new System.Net.IPEndPoint(localAddress, 0));
                await socket.ConnectAsync(context.DnsEndPoint, ct);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            };
        }

        return new HttpClient(handler)
        {
            DefaultRequestVersion = version ?? new Version(1, 1),
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    private bool ValidateServer(X509Certificate? certificate)
    {
        if (certificate is not X509Certificate2 server)
        {
            return false;
        }

        return TrustPolicies.ChainsTo(server, TlsRoot);
    }

    /// <summary>Decision log lines, parsed.</summary>
    public async Task<IReadOnlyList<JsonElement>> DecisionsAsync()
    {
        if (!File.Exists(DecisionLogPath))
        {
            return [];
        }

        await using var stream = new FileStream(DecisionLogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        var list = new List<JsonElement>();
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length > 0)
            {
                list.Add(JsonDocument.Parse(line).RootElement.Clone());
            }
        }

        return list;
    }

    public Task<JsonElement> DecisionAsync(Func<JsonElement, bool> match, string what)
        => Eventually.Until(async () => (await DecisionsAsync()).FirstOrDefault(match), e => e.ValueKind == JsonValueKind.Object, what);

    public async Task TransitionAsync(string serial, DeviceLifecycleState state, string reason)
        => await OpenRegistry().TransitionAsync(serial, state, "test", reason);

    public virtual async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _temp.Dispose();
        GC.SuppressFinalize(this);
    }
}

internal static class JsonElementExtensions
{
    /// <summary>A string property, or null when absent (decision lines leave out what they do not know).</summary>
    public static string? Text(this JsonElement element, string name) => element.TryGetProperty(name, out var value) ? value.GetString() : null;
}

/// <summary>A server next to the test OIDC provider: the provider starts before the server and stops after it.</summary>
public abstract class OidcServerFixture : ServerFixture
{
    private protected OidcServerFixture(OidcProvider provider, string[] extraArguments)
        : base(null, null, extraArguments)
        => Provider = provider;

    public OidcProvider Provider { get; }

    public override async ValueTask InitializeAsync()
    {
        await Provider.StartAsync();
        await base.InitializeAsync();
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await Provider.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
