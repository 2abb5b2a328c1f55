using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Hosting;
using KtZeroTrust.Hosting.Devices;
using KtZeroTrust.Hosting.Node;
using KtZeroTrust.Monitoring;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Detectors;
using KtZeroTrust.Monitoring.Metrics;
using KtZeroTrust.Monitoring.Otlp;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Monitoring.Store;
using KtZeroTrust.Redis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

public static class MonitoringServiceCollectionExtensions
{
    /// <summary>
    /// The decision pipeline: every decision journaled, then to the node's JSON-lines log, and, as configured, to a
    /// Redis Stream (<c>ZeroTrust:DecisionStream</c>; the allow list's Redis when none is named) and to an OTLP
    /// collector (<c>ZeroTrust:DecisionStream:Otlp</c>), and into the decision store (<c>ZeroTrust:DecisionStore</c>:
    /// PostgreSQL, or SQLite on the embedded default). Other features add their own lanes as
    /// <see cref="IDecisionExportSink"/> (the console's live feed, the detectors).
    /// </summary>
    public static IServiceCollection AddDecisionPipeline(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddZeroTrustNode(configuration);
        var node = configuration.GetSection(NodeOptions.SectionName).Get<NodeOptions>() ?? new NodeOptions();
        var logPath = DecisionLogOptions.PathFor(configuration, node.DataPath);
        services.AddSingleton<IDecisionExportSink>(_ => new JsonLinesFileSink(logPath));

        var stream = DecisionStreamOptions.Read(configuration);
        if (stream.Redis is { Length: > 0 } redis)
        {
            services.TryAddSingleton<RedisConnections>();
            services.AddSingleton<IDecisionExportSink>(sp => new RedisStreamSink(sp.GetRequiredService<RedisConnections>().Get(redis), stream.StreamKey, eventsPerEntry: stream.EventsPerEntry)); // spools while Redis is away
        }

        var otlp = configuration.GetSection(OtlpOptions.SectionName).Get<OtlpOptions>() ?? new OtlpOptions();
        if (otlp.Endpoint is not null && otlp.Logs)
        {
            services.AddSingleton<IDecisionExportSink>(_ => new OtlpLogSink(otlp, node.Name));
        }

        var store = DecisionStoreOptions.Read(configuration);
        if (store.IsOn(configuration))
        {
            if (store.Problems().ToList() is { Count: > 0 } problems)
            {
                throw new OptionsValidationException(DecisionStoreOptions.SectionName, typeof(DecisionStoreOptions), problems);
            }

            var sqlitePath = store.SqlitePath ?? node.PathOf(DecisionStoreOptions.DefaultFileName);
            services.AddSingleton<IDecisionStore>(_ => store.PostgreSql is { Length: > 0 } postgres ? PostgresDecisionStore.Create(postgres) : new SqliteDecisionStore(sqlitePath));
            services.AddSingleton<IDecisionExportSink>(sp => new DecisionStoreSink(sp.GetRequiredService<IDecisionStore>()));
            services.AddHostedService(sp => new DecisionStoreMaintenance(sp.GetRequiredService<IDecisionStore>(), store, sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<ILogger<DecisionStoreMaintenance>>()));
        }

        services.AddSingleton(sp => new DecisionPipeline(sp.GetServices<IDecisionExportSink>(),
            new DecisionPipelineOptions { SpoolDirectory = node.PathOf("spool"), Node = node.Name }, sp.GetRequiredService<ILogger<DecisionPipeline>>(), sp.GetRequiredService<TimeProvider>()));
        if (otlp.Endpoint is not null && otlp.Metrics)
        {
            services.AddDecisionMetricsExport(otlp, node.Name);
        }

        if (stream.Enabled)
        {
            services.AddSingleton<IDecisionSink>(sp => sp.GetRequiredService<DecisionPipeline>());
            services.AddSingleton<IDecisionDurability>(sp => sp.GetRequiredService<DecisionPipeline>());
        }
        else
        {
            // Only to measure what recording costs (bench/): decisions are not recorded at all. Said loudly at start.
            services.AddSingleton(sp => new UnrecordedDecisions(sp.GetRequiredService<ILogger<UnrecordedDecisions>>()));
            services.AddSingleton<IDecisionSink>(sp => sp.GetRequiredService<UnrecordedDecisions>());
            services.AddSingleton<IDecisionDurability>(sp => sp.GetRequiredService<UnrecordedDecisions>());
        }

        services.AddHostedService(sp => sp.GetRequiredService<DecisionPipeline>());
        var metricsToken = MetricsOptions.Read(configuration).TokenFile ?? node.PathOf(MetricsOptions.DefaultFileName);
        services.AddSingleton(new MetricsCredential(metricsToken));
        services.AddHostedService(sp => sp.GetRequiredService<MetricsCredential>());
        return services;
    }

    /// <summary>
    /// The anomaly detectors (<c>ZeroTrust:Detectors</c>). Embedded: one more lane of this node's pipeline, state in
    /// the data directory. With Redis: the leader among the nodes reads the shared stream, state in Redis. Call after
    /// <see cref="AddDecisionPipeline"/>: hosted services stop in reverse order, so the detectors stop while the
    /// pipeline still takes their alerts. Needs the registry (<see cref="IDeviceRegistry"/>).
    /// </summary>
    public static IServiceCollection AddDetectors(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(DetectorOptions.SectionName);
        var options = section.Get<DetectorOptions>() ?? new DetectorOptions();
        if (!options.Enabled)
        {
            return services;
        }

        services.AddOptions<DetectorOptions>().Bind(section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DetectorOptions>, DetectorOptionsValidator>());

        services.AddZeroTrustNode(configuration);
        var node = configuration.GetSection(NodeOptions.SectionName).Get<NodeOptions>() ?? new NodeOptions();
        var stream = DecisionStreamOptions.Read(configuration);
        services.AddSingleton(sp => new DetectorEngine(Detectors(sp), sp.GetRequiredService<IDeviceRegistry>(), sp.GetRequiredService<TimeProvider>()));
        if (stream.Redis is { Length: > 0 } redis)
        {
            services.TryAddSingleton<RedisConnections>();
            services.AddSingleton<IDetectorStateStore>(sp => new RedisDetectorStateStore(sp.GetRequiredService<RedisConnections>().Get(redis)));
            services.AddSingleton<IDetectorFeed>(sp => new RedisStreamDetectorFeed(sp.GetRequiredService<RedisConnections>().Get(redis),
                stream.StreamKey, node.Name, Detectors(sp), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<RedisStreamDetectorFeed>>()));
        }
        else
        {
            services.AddSingleton<IDetectorStateStore>(_ => new FileDetectorStateStore(node.PathOf("detectors.json")));
            services.AddSingleton<IDecisionExportSink>(sp => new DetectorFeedSink(sp));
        }

        services.AddSingleton(sp => new DetectorService(sp.GetRequiredService<DetectorEngine>(), sp.GetRequiredService<IDetectorStateStore>(), sp.GetRequiredService<IDecisionSink>(),
            sp.GetRequiredService<DecisionFactory>(), sp.GetRequiredService<DeviceQuarantine>(), Detectors(sp), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<DetectorService>>(), sp.GetService<IDetectorFeed>()));
        services.AddHostedService(sp => sp.GetRequiredService<DetectorService>());
        return services;

        static DetectorOptions Detectors(IServiceProvider sp) => sp.GetRequiredService<IOptions<DetectorOptions>>().Value; // validated on start
    }
}

internal sealed class DetectorOptionsValidator : IValidateOptions<DetectorOptions>
{
    public ValidateOptionsResult Validate(string? name, DetectorOptions options)
        => options.Problems().ToList() is { Count: > 0 } problems ? ValidateOptionsResult.Fail(problems) : ValidateOptionsResult.Success;
}
