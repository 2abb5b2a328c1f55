using KtZeroTrust.Hosting;
using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Hosting.Node;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.SocConsole;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.SocConsole.Auditing;
using KtZeroTrust.SocConsole.Authentication;
using KtZeroTrust.SocConsole.Decisions;
using KtZeroTrust.SocConsole.Endpoints;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

public static class ConsoleServiceCollectionExtensions
{
    /// <summary>
    /// The SOC console and admin API: accounts, sessions (cookie and bearer), authorization policies, antiforgery, the
    /// identity provider sign-in when configured, the audit, and where decisions are read (the shared stream, or this
    /// node's log and pipeline). The caller registers the registry (<see cref="KtZeroTrust.Core.Devices.IDeviceRegistry"/>,
    /// <see cref="KtZeroTrust.Core.Devices.IFleetInventory"/>, <see cref="KtZeroTrust.Core.Decisions.IAlertAcknowledgementStore"/>)
    /// and an <see cref="KtZeroTrust.Core.Decisions.IDecisionSink"/>.
    /// </summary>
    public static IServiceCollection AddSocConsole(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddZeroTrustNode(configuration);
        services.AddTransient<Microsoft.AspNetCore.Hosting.IStartupFilter, KtZeroTrust.SocConsole.Security.ConsoleSecurityHeaders.StartupFilter>();
        var stream = DecisionStreamOptions.Read(configuration);
        services.TryAddSingleton<ConsoleFeed>();
        services.TryAddSingleton<KtZeroTrust.Redis.RedisConnections>();
        services.TryAddSingleton(sp =>
        {
            var node = sp.GetRequiredService<IOptions<NodeOptions>>().Value;
            var log = DecisionLogOptions.PathFor(configuration, node.DataPath);
            // The store when there is one; otherwise fleet-wide with a stream (every node's decisions, this one's included).
            var store = sp.GetService<KtZeroTrust.Monitoring.Store.IDecisionStore>();
            return stream.Redis is { Length: > 0 } redis
                ? new ConsoleDecisions(log, sp.GetRequiredService<KtZeroTrust.Redis.RedisConnections>().Get(redis), stream.StreamKey, store)
                : new ConsoleDecisions(log, store: store);
        });
        if (stream.Redis is { Length: > 0 })
        {
            services.AddHostedService<StreamConsoleFeedService>();
        }
        else
        {
            services.AddSingleton<IDecisionExportSink>(sp => sp.GetRequiredService<ConsoleFeed>()); // a lane of this node's pipeline
        }

        services.TryAddSingleton<ConsoleUsers>();
        var console = configuration.GetSection(ConsoleOptions.SectionName).Get<ConsoleOptions>() ?? new ConsoleOptions();
        services.AddOptions<ConsoleOptions>().Bind(configuration.GetSection(ConsoleOptions.SectionName))
            .Validate(o => !string.IsNullOrWhiteSpace(o.KeyPrefix), "ZeroTrust:Console:KeyPrefix must not be empty.")
            .Validate(o => !ConsoleUsers.Problems(o).Any(), "ZeroTrust:Console: PasswordHashAlgorithm is pbkdf2-sha256 or pbkdf2-sha512, PasswordHashIterations 100,000 to 10,000,000.").ValidateOnStart();
        var shared = console.Redis is { Length: > 0 } redis ? redis : null;
        if (shared is not null)
        {
            services.TryAddSingleton<IConsoleSessionStore>(sp => new RedisConsoleSessionStore(sp.GetRequiredService<KtZeroTrust.Redis.RedisConnections>().Get(shared), console.KeyPrefix + "session:"));
            services.TryAddSingleton<IConsoleAccountStore>(sp => new RedisConsoleAccountStore(sp.GetRequiredService<KtZeroTrust.Redis.RedisConnections>().Get(shared), console.KeyPrefix));
            services.AddHostedService(sp => new ConsoleRedisConnector(sp.GetRequiredService<KtZeroTrust.Redis.RedisConnections>().Get(shared), sp.GetRequiredService<ILogger<ConsoleRedisConnector>>()));
        }
        else
        {
            services.TryAddSingleton<IConsoleSessionStore, MemoryConsoleSessionStore>();
            services.TryAddSingleton<IConsoleAccountStore>(sp => new FileConsoleAccountStore(sp.GetRequiredService<IOptions<NodeOptions>>().Value.PathOf("console-users.json")));
        }

        services.TryAddSingleton<ConsoleSessions>();
        services.TryAddSingleton<Audit>();
        services.TryAddSingleton<AuditThrottle>();
        services.TryAddSingleton<SignInGuard>();
        var oidc = configuration.GetSection(ConsoleOidcOptions.SectionName).Get<ConsoleOidcOptions>() ?? new ConsoleOidcOptions();
        services.TryAddSingleton(oidc);
        // Sign-in state, cookies and anti-forgery tokens are protected with this key ring; console nodes that share it
        // (this node's data directory, or the shared Redis) accept each other's, and a restart keeps it.
        services.AddDataProtection().SetApplicationName("KtZeroTrust");
        if (shared is not null)
        {
            services.AddOptions<KeyManagementOptions>().Configure<KtZeroTrust.Redis.RedisConnections>((o, connections) =>
            {
                var connection = connections.Get(shared);
                o.XmlRepository = new Microsoft.AspNetCore.DataProtection.StackExchangeRedis.RedisXmlRepository(
                    () => connection.Multiplexer?.GetDatabase() ?? throw new InvalidOperationException($"The console's shared Redis ({connection.Description}) is not connected yet."),
                    console.KeyPrefix + "dataprotection-keys");
            });
        }
        else
        {
            services.AddOptions<KeyManagementOptions>().Configure<IOptions<NodeOptions>, ILoggerFactory>((o, node, logs) =>
                o.XmlRepository = new FileSystemXmlRepository(new DirectoryInfo(node.Value.PathOf("dataprotection-keys")), logs));
        }
        services.AddConsoleAuthentication();
        services.AddConsoleOidc(oidc);
        return services;
    }
}

public static class ConsoleEndpointRouteBuilderExtensions
{
    /// <summary>The admin API under <c>/api</c> and the web console, on the console listener only.</summary>
    public static IEndpointRouteBuilder MapSocConsole(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var api = endpoints.MapGroup("/api").RequireListener(ListenerKind.Console).AnswerStoreFailures();
        SessionEndpoints.Map(api);
        DeviceEndpoints.Map(api);
        DecisionEndpoints.Map(api);
        AlertEndpoints.Map(api);
        MapEndpoints.Map(api);
        CapacityEndpoints.Map(api);
        UserEndpoints.Map(api);
        WebConsoleEndpoints.Map(endpoints, api);
        return endpoints;
    }

    /// <summary>First start: the one administrator, with a one-time password (null when accounts exist already).</summary>
    public static Task<string?> EnsureConsoleAdministratorAsync(this IServiceProvider services, CancellationToken cancellationToken = default)
        => services.GetRequiredService<ConsoleUsers>().EnsureAdministratorAsync(cancellationToken);
}
