using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace KtZeroTrust.Redis;

/// <summary>
/// One multiplexer per Redis configuration for the whole process: the allow list, nonces, the decision stream and the
/// detectors share it instead of each opening its own. Handing out <see cref="RedisConnection"/> (connected lazily)
/// keeps DI factories free of blocking waits.
/// </summary>
public sealed class RedisConnections(ILoggerFactory? loggerFactory = null) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, RedisConnection> _connections = new(StringComparer.Ordinal);

    public RedisConnection Get(string configuration)
        => _connections.GetOrAdd(configuration, c =>
        {
            var options = RedisConfiguration.Parse(c);
            options.LoggerFactory ??= loggerFactory;
            return new RedisConnection(options);
        });

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _connections.Values)
        {
            await connection.DisposeAsync();
        }
    }
}

/// <summary>
/// A multiplexer connected on first use. With <c>abortConnect=false</c> (our default) the multiplexer comes back even
/// while Redis is away and reconnects by itself; a connect that still fails (e.g. no Sentinel answers) is retried on
/// a later call, never cached as a failure.
/// </summary>
public sealed class RedisConnection(ConfigurationOptions options) : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private Task<ConnectionMultiplexer>? _connecting;
    private ConnectionMultiplexer? _multiplexer;
    private bool _disposed;

    public RedisConnection(string configuration)
        : this(RedisConfiguration.Parse(configuration))
    {
    }

    public ConfigurationOptions Options { get; } = options;

    /// <summary>The configuration without secrets, for logs.</summary>
    public string Description => RedisConfiguration.Describe(Options);

    /// <summary>The multiplexer once connected; null before.</summary>
    public ConnectionMultiplexer? Multiplexer => Volatile.Read(ref _multiplexer);

    public bool IsConnected => Multiplexer is { IsConnected: true };

    public ValueTask<ConnectionMultiplexer> ConnectAsync()
        => Volatile.Read(ref _multiplexer) is { } multiplexer ? new(multiplexer) : new(ConnectSlowAsync());

    /// <summary>The default database; throws <see cref="RedisConnectionException"/> when the connect itself failed.</summary>
    public async ValueTask<IDatabase> DatabaseAsync() => (await ConnectAsync()).GetDatabase();

    public async ValueTask DisposeAsync()
    {
        Task<ConnectionMultiplexer>? connecting;
        lock (_lock)
        {
            _disposed = true;
            connecting = _connecting;
        }

        if (connecting is null)
        {
            return;
        }

        try
        {
            await (await connecting).DisposeAsync();
        }
        catch (Exception ex) when (ex is RedisException or ArgumentException)
        {
            // never connected: nothing to close
        }
    }

    private async Task<ConnectionMultiplexer> ConnectSlowAsync()
    {
        Task<ConnectionMultiplexer> connecting;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_connecting is null || _connecting.IsFaulted || _connecting.IsCanceled)
            {
                _connecting = ConnectionMultiplexer.ConnectAsync(Options);
            }

            connecting = _connecting;
        }

        var multiplexer = await connecting;
        Volatile.Write(ref _multiplexer, multiplexer);
        return multiplexer;
    }
}
