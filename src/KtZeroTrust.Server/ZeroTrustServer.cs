using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using KtZeroTrust.Attestation;
using KtZeroTrust.Attestation.Endpoints;
using KtZeroTrust.Attestation.Verification;
using KtZeroTrust.Core.AllowList;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.AllowList.Redis;
using KtZeroTrust.Gateway.Identity;
using KtZeroTrust.Hosting;
using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Detectors;
using KtZeroTrust.Monitoring.Otlp;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Registry;
using KtZeroTrust.Registry.Postgres;
using KtZeroTrust.Registry.Redis;
using KtZeroTrust.Registry.Sql;
using KtZeroTrust.Registry.Sqlite;
using KtZeroTrust.Server.DemoUpstream;
using KtZeroTrust.Server.Health;
using KtZeroTrust.Server.Hosting;
using KtZeroTrust.Server.Pki;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Server;

/// <summary>The composition root: configuration, roles, listeners.</summary>
public static partial class ZeroTrustServer
{
    /// <summary>Builds the server; <paramref name="args"/> are standard ASP.NET Core command-line configuration.</summary>
    public static WebApplication Build(string[] args)
    {
        // The user listener's JwtBearer scheme is called by name (UserAuthenticator); it must not become the default scheme
        // that the authentication middleware runs for every request on every listener (device requests included).
        AppContext.SetSwitch("Microsoft.AspNetCore.Authentication.SuppressAutoDefaultScheme", true);

        WebApplicationBuilder builder;
        try
        {
            builder = WebApplication.CreateBuilder(new WebApplicationOptions
            {
                Args = args,
                // appsettings.json ships next to the binary; data paths resolve against the working directory instead.
                ContentRootPath = AppContext.BaseDirectory,
            });
        }
        catch (InvalidDataException ex) when (System.Text.RegularExpressions.Regex.Match(ex.Message, "'(?<path>[^']+)'") is { Success: true } file)
        {
            throw new StartupException("ZT-START-010", $"cannot read {Configuration.SafeJsonConfiguration.Describe(file.Groups["path"].Value, ex)}");
        }

        if (Environment.GetEnvironmentVariable("ZT_DEBUG") != "1")
        {
            // A refused start is one line on standard error (Program); the host's own report of it carries a stack trace.
            builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
        }

        // From here on a settings file that stops parsing is a refused change, and a setting nothing reads stops the start.
        var reloadErrors = new Configuration.ConfigurationReloadErrors();
        Configuration.SafeJsonConfiguration.AddDirectory(builder.Configuration);
        Configuration.SafeJsonConfiguration.KeepLastGood(builder.Configuration, reloadErrors);
        Configuration.ConfigurationKeyCheck.Check(builder.Configuration);

        var section = builder.Configuration.GetSection(ServerOptions.SectionName);
        var options = section.Get<ServerOptions>() ?? new ServerOptions();
        builder.Services.AddOptions<ServerOptions>().Bind(section);

        // The data directory has one definition (Hosting's NodeOptions), read here for the registry's default path.
        var dataDirectory = (builder.Configuration.GetSection(KtZeroTrust.Hosting.Node.NodeOptions.SectionName).Get<KtZeroTrust.Hosting.Node.NodeOptions>() ?? new()).DataPath;
        if (options.Transport.InlineSchedulingFor(options.Roles))
        {
            // Read once by the runtime when the first socket is created, which has not happened yet at this point.
            Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
            builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = true);
        }

        if (builder.Environment.IsDevelopment() && options.Pki.GenerateDevelopmentPki)
        {
            // Before Build: Kestrel reads its certificates while the host is built.
            DevelopmentBootstrap.EnsurePki(new KtZeroTrust.Pki.DevPki.DevPkiLayout(options.Pki.Directory), TimeProvider.System, Console.Out);
        }

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<SqlDeviceRegistry>(sp =>
        {
            var configuration = sp.GetRequiredService<IConfiguration>();
            if (configuration[$"{RegistryOptions.SectionName}:PostgreSql"] is { Length: > 0 } postgres)
            {
                // The schema is created or upgraded by PrepareAsync, before anything is served.
                return PostgresDeviceRegistry.Create(postgres, sp.GetRequiredService<TimeProvider>());
            }

            var path = configuration[$"{RegistryOptions.SectionName}:SqlitePath"] ?? Path.Combine(dataDirectory, RegistryOptions.DefaultFileName);
            return new SqliteDeviceRegistry(path, sp.GetRequiredService<TimeProvider>());
        });
        builder.Services.AddSingleton<IAllowListSource>(sp => sp.GetRequiredService<SqlDeviceRegistry>());
        builder.Services.AddSingleton<IFleetInventory>(sp => sp.GetRequiredService<SqlDeviceRegistry>());
        builder.Services.AddSingleton<IAlertAcknowledgementStore>(sp => sp.GetRequiredService<SqlDeviceRegistry>());
        builder.Services.AddSingleton<IDeviceRegistry>(sp => RegistryWithWriteThrough(sp));
        var allowList = builder.Configuration.GetSection(AllowListOptions.SectionName).Get<AllowListOptions>() ?? new AllowListOptions();
        if (allowList is { Redis.Length: > 0, SyncRegistryToRedis: true })
        {
            // The registry's side of the shared allow list: its writes go to Redis (write-through) on every node that has it.
            builder.Services.TryAddSingleton<KtZeroTrust.Redis.RedisConnections>();
            builder.Services.AddSingleton(sp => new RegistryRedisSynchronizer(sp.GetRequiredService<SqlDeviceRegistry>(),
                new RedisAllowListStore(sp.GetRequiredService<KtZeroTrust.Redis.RedisConnections>().Get(allowList.Redis), allowList.KeyPrefix), sp.GetRequiredService<TimeProvider>()));
        }

        // The decision stream: every decision to the local JSON-lines log and, with Redis, to a Redis Stream.
        var stream = DecisionStreamOptions.Read(builder.Configuration);
        if (stream.Redis is { Length: > 0 } && stream.EventsPerEntry is < 1 or > 1000)
        {
            throw new StartupException("ZT-START-006", $"ZeroTrust:DecisionStream:EventsPerEntry must be between 1 and 1000 (was {stream.EventsPerEntry}).");
        }

        if (options.Roles.Console)
        {
            builder.Services.AddSocConsole(builder.Configuration); // its live feed is a lane of the pipeline
        }

        builder.Services.AddDecisionPipeline(builder.Configuration);
        builder.Services.AddDetectors(builder.Configuration); // after the pipeline: they stop first, while it still takes their alerts

        builder.Services.AddSingleton(sp => ServerPki.Load(options.Pki, sp.GetRequiredService<IHostEnvironment>().IsProduction()));
        builder.Services.AddSingleton(sp => new DeviceTrust(new X509Certificate2Collection(sp.GetRequiredService<ServerPki>().OperatorCa)));
        builder.Services.AddSingleton(sp => SslStreamCertificateContext.Create(sp.GetRequiredService<ServerPki>().ServerCertificate, additionalCertificates: null, offline: true));
        builder.Services.AddSingleton<DevelopmentBootstrap>();

        builder.Services.AddZeroTrustNode(builder.Configuration);
        if (options.Roles.Gateway)
        {
            builder.Services.AddZeroTrustGateway(builder.Configuration);
            var users = builder.Configuration.GetSection(UserGatewayOptions.SectionName).Get<UserGatewayOptions>();
            if (users is { EntraId.Enabled: true })
            {
                builder.Services.AddEntraIdUsers(users);
            }
        }

        builder.Services.AddSingleton(sp => ServerPki.LoadOperatorCa(options.Pki));
        builder.Services.AddSingleton(sp => new VendorTrust(sp.GetRequiredService<ServerPki>().VendorRoot is { } root ? [root] : []));
        if (options.Roles.Attestation)
        {
            builder.Services.AddAttestation(builder.Configuration);
            var enrollment = $"https://{(options.Listeners.Enrollment.Address is "*" or "+" ? "localhost" : options.Listeners.Enrollment.Address)}:{options.Listeners.Enrollment.Port}";
            builder.Services.PostConfigure<AttestationOptions>(o =>
            {
                o.CrlUrl ??= enrollment + EnrollmentEndpoints.CrlPath;
                o.OcspUrl ??= enrollment + KtZeroTrust.Attestation.Revocation.OcspResponder.Path;
            });
        }

        if (builder.Environment.IsDevelopment())
        {
            // Development: the assertion key lives with the development PKI (created on first start), so it survives restarts.
            builder.Services.PostConfigure<UserGatewayOptions>(o => o.AssertionKeyPath ??= Path.Combine(options.Pki.Directory, "gateway-assertion.key.pem"));
        }

        builder.Services.AddProblemDetails();
        builder.Services.AddReadinessChecks(options.Roles.Gateway);
        builder.WebHost.ConfigureKestrel(kestrel => ListenerConfiguration.Configure(kestrel, options));

        var app = builder.Build();
        var configurationLogger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("KtZeroTrust.Server.Configuration");
        reloadErrors.LogTo(description => LogConfigurationRefused(configurationLogger, description));
        app.UseMiddleware<RefusalRecorderMiddleware>(); // outermost: no refusal below it goes unrecorded
        if (options.Roles.Gateway)
        {
            app.MapZeroTrustGateway();
        }

        if (options.Roles.Attestation)
        {
            app.MapEnrollment();
        }

        if (options.Roles.Console)
        {
            app.MapSocConsole();
        }

        app.MapDecisionMetrics();
        app.MapReadinessChecks();
        if (options.DemoUpstream.Enabled)
        {
            app.MapDemoUpstream();
        }

        app.Lifetime.ApplicationStarted.Register(() => LogListeners(app, options));
        return app;
    }

    /// <summary>
    /// With Redis, every registry write of this process goes through to Redis and reaches every gateway node at once,
    /// whatever roles this node runs (a console-only node's suspensions included).
    /// </summary>
    private static IDeviceRegistry RegistryWithWriteThrough(IServiceProvider services)
    {
        var registry = services.GetRequiredService<SqlDeviceRegistry>();
        if (services.GetService<RegistryRedisSynchronizer>() is not { } synchronizer)
        {
            // Embedded: this process's own writes (enrollments) reach its allow list at once, not at the next poll.
            return services.GetService<RegistryAllowListFeed>() is { } feed ? new WriteThroughDeviceRegistry(registry, feed.RefreshAsync) : registry;
        }

        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("KtZeroTrust.Server.Registry");
        return new WriteThroughDeviceRegistry(registry, synchronizer, ex => LogWriteThroughFailed(logger, ex));
    }

    /// <summary>First start: the one administrator, with a password good for one sign-in (it must be replaced then).</summary>
    private static async Task EnsureConsoleAdministratorAsync(WebApplication app, ServerOptions options, CancellationToken cancellationToken)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("KtZeroTrust.Server");
        try
        {
            if (await app.Services.EnsureConsoleAdministratorAsync(cancellationToken) is { } password)
            {
                System.Console.WriteLine($"Console: https://localhost:{options.Listeners.Console.Port}/  user: admin  one-time password: {password}");
                LogConsoleAdministrator(logger, app.Services.GetRequiredService<KtZeroTrust.SocConsole.Accounts.ConsoleUsers>().Location);
            }
        }
        catch (Exception ex) when (ex is StackExchange.Redis.RedisException or TimeoutException)
        {
            // The shared account store is away: the node starts (sign-ins fail closed meanwhile); the next start creates the administrator.
            LogConsoleAccountsUnavailable(logger, ex);
        }
    }

    [LoggerMessage(EventId = ServerEventIds.ConfigurationRefused, Level = LogLevel.Error, Message = "Configuration change refused, the last good settings keep serving: {Description}")]
    private static partial void LogConfigurationRefused(ILogger logger, string description);

    /// <summary>
    /// The one-line reason (with its ZT-START id) for an exception that stopped the start, or null when it is not a
    /// configuration or environment problem (then the exception goes up as it is: a defect, with its stack trace).
    /// </summary>
    public static string? ExplainStartFailure(Exception exception, ServerOptions? options)
    {
        ArgumentNullException.ThrowIfNull(exception);
        switch (exception)
        {
            case StartupException:
                return exception.Message;
            case IOException when exception.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException || exception.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase):
                var port = System.Text.RegularExpressions.Regex.Match(exception.Message, @":(\d+)(/|\b)") is { Success: true } m ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
                var listener = options is null ? null : new[] { ("Device", options.Listeners.Device), ("Enrollment", options.Listeners.Enrollment), ("User", options.Listeners.User), ("Console", options.Listeners.Console) }
                    .FirstOrDefault(l => l.Item2.Port == port).Item1;
                var setting = listener is null ? "the port" : $"ZeroTrust:Listeners:{listener}:Port";
                return $"ZT-START-011: port {port} is already in use by another process; stop it or change {setting}.";
            case OptionsValidationException validation:
                return $"ZT-START-013: {string.Join(" ", validation.Failures)}";
            case KtZeroTrust.Pki.Certificates.PkiException:
                return $"ZT-START-014: {exception.Message}";
            case InvalidDataException or FormatException:
                return $"ZT-START-010: {exception.Message}";
            case IOException or UnauthorizedAccessException:
                return $"ZT-START-015: {exception.Message}";
            case System.Data.Common.DbException:
                return $"ZT-START-016: the registry database cannot be reached or prepared (ZeroTrust:Registry): {exception.Message}";
            default:
                return null;
        }
    }

    [LoggerMessage(EventId = ServerEventIds.ConsoleAdministratorCreated, Level = LogLevel.Warning, Message = "Console administrator 'admin' created with a one-time password (printed on standard output); accounts in {Path}")]
    private static partial void LogConsoleAdministrator(ILogger logger, string path);

    [LoggerMessage(EventId = ServerEventIds.ConsoleAccountsUnavailable, Level = LogLevel.Error, Message = "The console's account store did not answer at start: no administrator checked or created; sign-ins fail until it answers")]
    private static partial void LogConsoleAccountsUnavailable(ILogger logger, Exception exception);

    [LoggerMessage(EventId = ServerEventIds.WriteThroughFailed, Level = LogLevel.Warning, Message = "Registry change committed but not yet pushed to Redis; the periodic synchronisation will deliver it")]
    private static partial void LogWriteThroughFailed(ILogger logger, Exception exception);

    /// <summary>Runs the development first-start steps (Development only), loads the PKI, and starts serving.</summary>
    public static async Task PrepareAsync(WebApplication app, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(app);
        var options = app.Services.GetRequiredService<IOptions<ServerOptions>>().Value;
        if (app.Services.GetRequiredService<SqlDeviceRegistry>() is PostgresDeviceRegistry postgres)
        {
            await postgres.MigrateAsync(cancellationToken);
        }

        if (app.Environment.IsDevelopment() && options.Pki.GenerateDevelopmentPki)
        {
            var bootstrap = app.Services.GetRequiredService<DevelopmentBootstrap>();
            await bootstrap.EnsureSampleFleetAsync(new KtZeroTrust.Pki.DevPki.DevPkiLayout(options.Pki.Directory), cancellationToken);
        }

        if (options.Roles.Console)
        {
            await EnsureConsoleAdministratorAsync(app, options, cancellationToken);
        }

        // Load (and check) the PKI now, so a bad or development PKI in Production fails before anything listens.
        _ = app.Services.GetRequiredService<ServerPki>();
        if (options.Roles.Attestation)
        {
            _ = app.Services.GetRequiredService<KtZeroTrust.Pki.Certificates.CertificateAuthority>();
        }
    }

    private static void LogListeners(WebApplication app, ServerOptions options)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("KtZeroTrust.Server");
        void Log(bool enabled, string role, ListenerOptions listener, string auth)
        {
            if (enabled)
            {
                LogListening(logger, role, $"https://{listener.Address}:{listener.Port}", auth);
            }
        }

        Log(options.Roles.Gateway, "device gateway", options.Listeners.Device, "mTLS, operator device CA client certificate required");
        Log(options.Roles.Attestation, "enrollment/attestation", options.Listeners.Enrollment, "TLS, client certificate optional");
        Log(options.Roles.Gateway, "user gateway", options.Listeners.User, "TLS, OIDC bearer token");
        Log(options.Roles.Console, "console/admin API", options.Listeners.Console, "TLS");
        if (options.DemoUpstream.Enabled)
        {
            LogListening(logger, "demo upstream", $"http://127.0.0.1:{options.DemoUpstream.Port}", "loopback only");
        }
    }

    [LoggerMessage(EventId = ServerEventIds.Listening, Level = LogLevel.Information, Message = "Listening: {Role} on {Url} ({Authentication})")]
    private static partial void LogListening(ILogger logger, string role, string url, string authentication);
}
