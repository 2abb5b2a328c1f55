using System.Reflection;
using System.Text.Json;
using Microsoft.Extensions.Configuration.Json;

namespace KtZeroTrust.Server.Configuration;

/// <summary>
/// appsettings files that keep serving their last good content: a file that fails to parse on reload is a refused
/// change (reported with file and line), never an empty configuration. The stock JSON provider clears a file's data
/// when a reload fails, so the next reload of any other file would apply "no routes, no policies".
/// </summary>
internal static class SafeJsonConfiguration
{
    /// <summary>The setting naming a directory of extra settings files (a mounted Kubernetes ConfigMap, a conf.d).</summary>
    public const string DirectoryKey = "ZeroTrust:ConfigurationDirectory";

    /// <summary>
    /// Adds every <c>*.json</c> file of <see cref="DirectoryKey"/> (name order) after the shipped appsettings files and
    /// before environment variables and the command line, each reloaded on change (policies, for one). Refuses a
    /// directory that does not exist: a mount that failed must not start a node on defaults.
    /// </summary>
    public static void AddDirectory(ConfigurationManager configuration)
    {
        if (configuration[DirectoryKey] is not { Length: > 0 } directory)
        {
            return;
        }

        if (!Directory.Exists(directory))
        {
            throw new KtZeroTrust.Server.Pki.StartupException("ZT-START-017", $"{DirectoryKey} '{directory}' does not exist.");
        }

        var sources = (IList<IConfigurationSource>)((IConfigurationBuilder)configuration).Sources;
        var at = sources.ToList().FindLastIndex(source => source is JsonConfigurationSource) + 1; // after the last settings file
        foreach (var file in Directory.EnumerateFiles(directory, "*.json").Order(StringComparer.Ordinal))
        {
            var source = new JsonConfigurationSource { Path = System.IO.Path.GetFileName(file), Optional = false, ReloadOnChange = true };
            source.FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(System.IO.Path.GetFullPath(directory));
            try
            {
                sources.Insert(at++, source); // loads it now
            }
            catch (InvalidDataException ex)
            {
                throw new KtZeroTrust.Server.Pki.StartupException("ZT-START-010", $"cannot read {Describe(file, ex)}");
            }
        }
    }

    /// <summary>Replaces every JSON file source of <paramref name="configuration"/> with one that keeps its last good data.</summary>
    public static void KeepLastGood(ConfigurationManager configuration, ConfigurationReloadErrors errors)
    {
        var sources = (IList<IConfigurationSource>)((IConfigurationBuilder)configuration).Sources;
        for (var i = 0; i < sources.Count; i++)
        {
            if (sources[i] is JsonConfigurationSource json and not LastGoodJsonSource)
            {
                sources[i] = new LastGoodJsonSource(errors)
                {
                    Path = json.Path!,
                    Optional = json.Optional,
                    ReloadOnChange = json.ReloadOnChange,
                    ReloadDelay = json.ReloadDelay,
                    FileProvider = json.FileProvider,
                };
            }
        }
    }

    /// <summary>The file an operator edits for <paramref name="path"/>: the project's copy when this one is the build output's.</summary>
    public static string OperatorPath(string path)
    {
        var sourceDirectory = typeof(SafeJsonConfiguration).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "ZeroTrust.SettingsSourceDirectory")?.Value;
        var full = System.IO.Path.GetFullPath(path);
        if (sourceDirectory is null || !full.StartsWith(AppContext.BaseDirectory, StringComparison.Ordinal))
        {
            return full;
        }

        var source = System.IO.Path.Combine(sourceDirectory, System.IO.Path.GetRelativePath(AppContext.BaseDirectory, full));
        return File.Exists(source) ? System.IO.Path.GetFullPath(source) : full;
    }

    /// <summary>The file a JSON source reads (its provider's root joined with its path).</summary>
    public static string PathOf(FileConfigurationSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source.FileProvider is Microsoft.Extensions.FileProviders.PhysicalFileProvider p ? System.IO.Path.Combine(p.Root, source.Path ?? "") : source.Path ?? "appsettings.json";
    }

    /// <summary>"file, line N: what": the operator-facing description of a JSON parse failure.</summary>
    public static string Describe(string path, Exception exception)
    {
        var json = exception as JsonException ?? exception.InnerException as JsonException ?? exception.InnerException?.InnerException as JsonException;
        var where = json?.LineNumber is { } line ? $", line {line + 1}" : "";
        return $"{OperatorPath(path)}{where}: {(json?.Message ?? exception.Message).Split(" Path:", 2)[0].Split(" LineNumber:", 2)[0]}";
    }

    private sealed class LastGoodJsonSource(ConfigurationReloadErrors errors) : JsonConfigurationSource
    {
        public override IConfigurationProvider Build(IConfigurationBuilder builder)
        {
            EnsureDefaults(builder);
            return new LastGoodJsonProvider(this, errors);
        }
    }

    private sealed class LastGoodJsonProvider(JsonConfigurationSource source, ConfigurationReloadErrors errors) : JsonConfigurationProvider(source)
    {
        private bool _loaded;

        public override void Load(Stream stream)
        {
            try
            {
                base.Load(stream); // assigns Data only once the whole file parsed
                _loaded = true;
            }
            catch (FormatException ex) when (_loaded)
            {
                // A reload that does not parse: not thrown on, so the file provider does not empty Data; say so.
                errors.Report(Describe(PathOf(Source), ex));
            }
        }
    }
}

/// <summary>Configuration files refused on reload; the host logs each one as it happens.</summary>
internal sealed class ConfigurationReloadErrors
{
    private Action<string>? _log;
    private readonly List<string> _early = [];
    private readonly object _gate = new();

    public void Report(string description)
    {
        lock (_gate)
        {
            if (_log is null)
            {
                _early.Add(description);
                return;
            }
        }

        _log(description);
    }

    /// <summary>From here on, refusals go to <paramref name="log"/> (and the ones before it, now).</summary>
    public void LogTo(Action<string> log)
    {
        string[] early;
        lock (_gate)
        {
            _log = log;
            early = [.. _early];
            _early.Clear();
        }

        foreach (var e in early)
        {
            log(e);
        }
    }
}
