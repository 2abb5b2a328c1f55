using KtZeroTrust.Core.Devices;
using System.Collections;
using System.Reflection;
using KtZeroTrust.Attestation;
using KtZeroTrust.Gateway;
using KtZeroTrust.Gateway.AllowList;
using KtZeroTrust.Gateway.Enforcement;
using KtZeroTrust.Gateway.Identity;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Detectors;
using KtZeroTrust.Monitoring.Otlp;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Registry;
using KtZeroTrust.Server.Pki;
using KtZeroTrust.SocConsole.Authentication;
using Microsoft.Extensions.Configuration.Json;

namespace KtZeroTrust.Server.Configuration;

/// <summary>
/// Refuses a start with a setting under <c>ZeroTrust</c> that nothing reads (a typo such as <c>Gatway</c> or
/// <c>MaxStalenes</c> would otherwise be ignored silently and leave a default in force), naming the setting, the file
/// or source it came from, and the nearest known name.
/// </summary>
internal static class ConfigurationKeyCheck
{
    // Each section and the options types bound from it; "names" are settings read directly by key.
    private static readonly (string Section, Type[] Types, string[] Names)[] Known =
    [
        ("ZeroTrust", [typeof(ServerOptions), typeof(KtZeroTrust.Hosting.Node.NodeOptions)], ["Gateway", "AllowList", "Users", "Policies", "Detectors", "DecisionLog", "DecisionStream", "DecisionStore", "Metrics", "Attestation", "Registry", "Console", "ConfigurationDirectory"]),
        (DeviceGatewayOptions.SectionName, [typeof(DeviceGatewayOptions)], []),
        (AllowListOptions.SectionName, [typeof(AllowListOptions)], []),
        (UserGatewayOptions.SectionName, [typeof(UserGatewayOptions)], []),
        (DetectorOptions.SectionName, [typeof(DetectorOptions)], []),
        (CloneDetectionOptions.SectionName, [typeof(CloneDetectionOptions)], []),
        (DecisionLogOptions.SectionName, [typeof(DecisionLogOptions)], []),
        (DecisionStreamOptions.SectionName, [typeof(DecisionStreamOptions)], ["Otlp"]),
        (OtlpOptions.SectionName, [typeof(OtlpOptions)], []),
        (KtZeroTrust.Monitoring.Metrics.MetricsOptions.SectionName, [typeof(KtZeroTrust.Monitoring.Metrics.MetricsOptions)], []),
        (KtZeroTrust.Monitoring.Store.DecisionStoreOptions.SectionName, [typeof(KtZeroTrust.Monitoring.Store.DecisionStoreOptions)], []),
        (AttestationOptions.SectionName, [typeof(AttestationOptions)], ["Redis"]),
        (RegistryOptions.SectionName, [typeof(RegistryOptions)], []),
        (KtZeroTrust.SocConsole.ConsoleOptions.SectionName, [typeof(KtZeroTrust.SocConsole.ConsoleOptions)], ["Oidc"]),
        (ConsoleOidcOptions.SectionName, [typeof(ConsoleOidcOptions)], []),
    ];

    public static void Check(IConfiguration configuration)
    {
        foreach (var (section, types, names) in Known)
        {
            Check(configuration, configuration.GetSection(section), types, names);
        }
    }

    private static void Check(IConfiguration root, IConfigurationSection section, Type[] types, string[] names)
    {
        foreach (var child in section.GetChildren())
        {
            if (names.Contains(child.Key, StringComparer.OrdinalIgnoreCase) || Known.Any(k => string.Equals(k.Section, child.Path, StringComparison.OrdinalIgnoreCase)))
            {
                continue; // read by key, or checked as its own section
            }

            var property = types.Select(t => t.GetProperty(child.Key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase)).FirstOrDefault(p => p is not null);
            if (property is null)
            {
                var known = types.SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance)).Select(p => p.Name).Concat(names)
                    .Concat(Known.Where(k => k.Section.StartsWith(section.Path + ":", StringComparison.OrdinalIgnoreCase) && k.Section.Count(c => c == ':') == section.Path.Count(c => c == ':') + 1).Select(k => k.Section[(section.Path.Length + 1)..]))
                    .Distinct().ToList();
                var nearest = known.OrderBy(k => Distance(k.ToUpperInvariant(), child.Key.ToUpperInvariant())).FirstOrDefault();
                throw new StartupException("ZT-START-012",
                    $"Unknown setting '{child.Path}' in {SourceOf(root, child)}: nothing reads it{(nearest is null ? "" : $" (did you mean '{section.Path}:{nearest}'?)")}.");
            }

            var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (type.IsClass && type != typeof(string) && !typeof(IEnumerable).IsAssignableFrom(type))
            {
                Check(root, child, [type], []);
            }
        }
    }

    /// <summary>Which file (or the command line, or the environment) a setting came from, as the operator knows it.</summary>
    public static string SourceOf(IConfiguration root, IConfigurationSection section)
    {
        var leaf = section.Value is not null ? section.Path : section.AsEnumerable().FirstOrDefault(kv => kv.Value is not null).Key ?? section.Path;
        if (root is IConfigurationRoot configurationRoot)
        {
            foreach (var provider in configurationRoot.Providers.Reverse())
            {
                if (provider.TryGet(leaf, out _))
                {
                    return provider switch
                    {
                        JsonConfigurationProvider json => SafeJsonConfiguration.OperatorPath(SafeJsonConfiguration.PathOf(json.Source)),
                        Microsoft.Extensions.Configuration.CommandLine.CommandLineConfigurationProvider => "the command line",
                        Microsoft.Extensions.Configuration.EnvironmentVariables.EnvironmentVariablesConfigurationProvider => "the environment (ZeroTrust__...)",
                        _ => provider.ToString() ?? "the configuration",
                    };
                }
            }
        }

        return "the configuration";
    }

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }
        }

        return d[a.Length, b.Length];
    }
}
