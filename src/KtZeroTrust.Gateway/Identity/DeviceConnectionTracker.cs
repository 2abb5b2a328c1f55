using System.Collections.Concurrent;
using System.Net;
using KtZeroTrust.Core.Certificates;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Hosting.Listeners;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KtZeroTrust.Gateway.Identity;

/// <summary>
/// The device connections open on this node, by certificate. When a device stops being allowed its connections are
/// aborted at once (HTTP/1.1 keep-alive and HTTP/2 alike: the transport is closed), each abort recorded as a decision.
/// </summary>
public sealed partial class DeviceConnectionTracker(
    IDecisionSink decisions,
    DecisionFactory decisionFactory,
    ILogger<DeviceConnectionTracker> logger)
{
    private readonly ConcurrentDictionary<CertificateHash, ConcurrentDictionary<string, ConnectionContext>> _open = new();

    public int OpenConnections => _open.Values.Sum(c => c.Count);

    public void Add(CertificateHash hash, ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _open.GetOrAdd(hash, static _ => new ConcurrentDictionary<string, ConnectionContext>())[connection.ConnectionId] = connection;
    }

    public void Remove(CertificateHash hash, ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (_open.TryGetValue(hash, out var connections))
        {
            connections.TryRemove(connection.ConnectionId, out _);
            if (connections.IsEmpty)
            {
                _open.TryRemove(new KeyValuePair<CertificateHash, ConcurrentDictionary<string, ConnectionContext>>(hash, connections));
            }
        }
    }

    /// <summary>Aborts every open connection of a certificate; returns how many.</summary>
    public int Abort(CertificateHash hash, string deviceSerial, ReasonCode reason)
    {
        if (!_open.TryGetValue(hash, out var connections) || connections.IsEmpty)
        {
            return 0;
        }

        var count = 0;
        var hex = hash.ToString();
        foreach (var connection in connections.Values)
        {
            connection.Abort(new ConnectionAbortedException($"Device {deviceSerial} is no longer allowed: {ReasonCodes.Name(reason)}."));
            count++;
            decisions.Post(decisionFactory.Handshake(reason, deviceSerial, connection.RemoteEndPoint as IPEndPoint, hex, "connection-abort"));
        }

        LogAborted(logger, count, deviceSerial, ReasonCodes.Name(reason));
        return count;
    }

    [LoggerMessage(EventId = GatewayEventIds.ConnectionsAborted, Level = LogLevel.Warning, Message = "Aborted {Count} open connection(s) of device {Serial}: {Reason}")]
    private static partial void LogAborted(ILogger logger, int count, string serial, string reason);
}

public static class DeviceConnectionTrackingExtensions
{
    /// <summary>Registers each authenticated device connection with the tracker for its lifetime. Call after <c>UseHttps</c>.</summary>
    public static ListenOptions UseDeviceConnectionTracking(this ListenOptions listenOptions)
    {
        ArgumentNullException.ThrowIfNull(listenOptions);
        var tracker = listenOptions.ApplicationServices.GetRequiredService<DeviceConnectionTracker>();
        listenOptions.Use(next => async connection =>
        {
            var identity = DeviceTlsHandshake.GetIdentity(connection.Items);
            if (identity is null)
            {
                await next(connection);
                return;
            }

            tracker.Add(identity.Hash, connection);
            try
            {
                await next(connection);
            }
            finally
            {
                tracker.Remove(identity.Hash, connection);
            }
        });
        return listenOptions;
    }
}
