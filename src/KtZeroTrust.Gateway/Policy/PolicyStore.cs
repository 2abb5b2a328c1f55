using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

namespace KtZeroTrust.Gateway.Policy;

/// <summary>
/// The policies in force, from <c>ZeroTrust:Policies</c>. Compiled at start (a bad configuration stops the start with
/// the error) and again on every configuration change: a change that does not compile is refused, logged with its
/// error, and the previous policies keep serving.
/// </summary>
public sealed partial class PolicyStore : IDisposable
{
    public const string SectionName = "ZeroTrust:Policies";

    private static readonly System.Collections.Frozen.FrozenDictionary<string, Type> KnownSettings =
        System.Collections.Frozen.FrozenDictionary.ToFrozenDictionary(typeof(RoutePolicyOptions).GetProperties(), p => p.Name, p => p.PropertyType, StringComparer.OrdinalIgnoreCase);

    private readonly IConfigurationSection _section;
    private readonly ILogger<PolicyStore> _logger;
    private readonly IDisposable _subscription;
    private volatile PolicySet _current;

    public PolicyStore(IConfiguration configuration, ILogger<PolicyStore> logger)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        _section = configuration.GetSection(SectionName);
        _logger = logger;
        _current = Load(); // throws: the host does not start on a bad policy file
        LogLoaded(logger, _current.Count, _current.Version);
        _subscription = ChangeToken.OnChange(_section.GetReloadToken, Reload);
    }

    public PolicySet Current => _current;

    /// <summary>Why the last change was refused; null when the last change applied.</summary>
    public string? LastError { get; private set; }

    public void Dispose() => _subscription.Dispose();

    private void Reload()
    {
        try
        {
            var next = Load();
            if (next.Count == 0 && _current.Count > 0)
            {
                // Every policy gone at once is far likelier a broken or half-written file than an intent: refused.
                throw new PolicyException($"the change would remove all {_current.Count} route policies; the current ones keep serving (remove them one by one, or restart with none)");
            }

            if (next.Version != _current.Version)
            {
                _current = next;
                LogLoaded(_logger, next.Count, next.Version);
            }

            LastError = null;
        }
        catch (Exception ex) when (ex is PolicyException or InvalidOperationException or FormatException)
        {
            LastError = ex.Message;
            LogRejected(_logger, ex.Message, _current.Version);
        }
    }

    private PolicySet Load()
    {
        // Unknown keys are errors: a misspelt "RequireMultiFactor" must not silently leave a route without MFA.
        foreach (var route in _section.GetChildren())
        {
            foreach (var setting in route.GetChildren())
            {
                if (!KnownSettings.TryGetValue(setting.Key, out var type))
                {
                    throw new PolicyException($"route '{route.Key}': unknown setting '{setting.Key}' (known: {string.Join(", ", KnownSettings.Keys.Order(StringComparer.Ordinal))}).");
                }

                // The binder skips a value it cannot convert; a policy must not.
                if ((type == typeof(bool) && !bool.TryParse(setting.Value, out _)) || (type == typeof(int) && !int.TryParse(setting.Value, System.Globalization.CultureInfo.InvariantCulture, out _)))
                {
                    throw new PolicyException($"route '{route.Key}': {setting.Key} '{setting.Value}' is not a {(type == typeof(bool) ? "true/false" : "whole number")}.");
                }
            }
        }

        Dictionary<string, RoutePolicyOptions> policies;
        try
        {
            policies = _section.Get<Dictionary<string, RoutePolicyOptions>>() ?? [];
        }
        catch (InvalidOperationException ex)
        {
            throw new PolicyException($"{SectionName}: {ex.InnerException?.Message ?? ex.Message}");
        }

        return PolicySet.Compile(policies);
    }

    [LoggerMessage(EventId = GatewayEventIds.PoliciesLoaded, Level = LogLevel.Information, Message = "Policies loaded: {Count} routes, version {Version}")]
    private static partial void LogLoaded(ILogger logger, int count, string version);

    [LoggerMessage(EventId = GatewayEventIds.PoliciesRejected, Level = LogLevel.Error, Message = "Policy change refused: {Error}; still serving version {Version}")]
    private static partial void LogRejected(ILogger logger, string error, string version);
}
