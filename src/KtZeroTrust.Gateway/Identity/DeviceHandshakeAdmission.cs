using System.Buffers;
using System.Net;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Hosting.Listeners;
using KtZeroTrust.Hosting.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KtZeroTrust.Gateway.Identity;

/// <summary>
/// Handshake admission on the device listener. A reconnect storm (a region's units all coming back at once) would
/// otherwise start every handshake together, each slower than the last, until units time out and retry into a worse
/// storm. At most <see cref="HandshakeLimits.MaxConcurrent"/> run at once; up to <see cref="HandshakeLimits.MaxWaiting"/>
/// more wait (the accept backlog) for at most <see cref="HandshakeLimits.MaxWait"/>; anything beyond is answered with a
/// fatal TLS alert (internal_error) before any certificate is read, recorded as <c>listener_busy</c>, and costs
/// microseconds. Established connections are never touched.
/// </summary>
public sealed partial class DeviceHandshakeAdmission(IOptions<DeviceGatewayOptions> options, IDecisionSink decisions, DecisionFactory decisionFactory,
    TimeProvider timeProvider, ILogger<DeviceHandshakeAdmission> logger) : INodeMetricSource, IDisposable
{
    // A TLS record (content type 21 alert, version 3.1 as a first record may carry), fatal (2) internal_error (80).
    private static readonly byte[] InternalErrorAlert = [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x50];
    private static readonly TimeSpan LogEvery = TimeSpan.FromSeconds(10);

    private readonly SemaphoreSlim _slots = new(options.Value.Handshakes.MaxConcurrent, options.Value.Handshakes.MaxConcurrent);
    private int _waiting;
    private long _shed;
    private long _shedLogged;
    private long _lastLogTimestamp;

    private HandshakeLimits Limits => options.Value.Handshakes;

    public long Shed => Interlocked.Read(ref _shed);

    public int InProgress => Limits.MaxConcurrent - _slots.CurrentCount;

    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>A handshake slot, waiting for one within the limits; null when there is none in time (or the peer left).</summary>
    public async ValueTask<Slot?> EnterAsync(CancellationToken peerGone)
    {
        if (_slots.Wait(0, CancellationToken.None))
        {
            return new Slot(_slots);
        }

        if (Interlocked.Increment(ref _waiting) > Limits.MaxWaiting)
        {
            Interlocked.Decrement(ref _waiting);
            return null;
        }

        try
        {
            return await _slots.WaitAsync(Limits.MaxWait, peerGone) ? new Slot(_slots) : null;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    /// <summary>Refuses the connection at the TLS level: its (buffered) ClientHello consumed, so closing does not reset it, then a fatal alert; a decision.</summary>
    internal async Task ShedAsync(ConnectionContext connection)
    {
        Interlocked.Increment(ref _shed);
        Record(connection, ReasonCode.ListenerBusy);
        LogNowAndThen();
        if (connection.Transport.Input.TryRead(out var read))
        {
            connection.Transport.Input.AdvanceTo(read.Buffer.End);
        }

        try
        {
            await connection.Transport.Output.WriteAsync(InternalErrorAlert, connection.ConnectionClosed);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ConnectionResetException or ObjectDisposedException)
        {
            // The peer is gone: nothing more to tell it.
        }
    }

    /// <summary>A handshake refused before TLS began, recorded here (so the connection-level recorder does not record it again).</summary>
    internal void Record(ConnectionContext connection, ReasonCode reason)
    {
        connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionMetricsTagsFeature>()?.Tags.Add(new(ConnectionRefusalRecorder.RecordedTag, true));
        decisions.Post(decisionFactory.Handshake(reason, null, connection.RemoteEndPoint as IPEndPoint, null, "tls-handshake"));
    }

    public IReadOnlyList<NodeMetric> Metrics => field ??=
    [
        new("ktzt_device_handshakes_in_progress", "Device TLS handshakes in progress.", false, () => InProgress),
        new("ktzt_device_handshakes_waiting", "New device connections waiting for a handshake slot.", false, () => Waiting),
        new("ktzt_device_handshakes_capacity", "Device TLS handshakes run at once at most (Gateway:Handshakes:MaxConcurrent).", false, () => Limits.MaxConcurrent),
        new("ktzt_device_handshakes_shed_total", "New device connections refused with a TLS alert for want of a handshake slot.", true, () => Shed),
    ];

    public void Dispose() => _slots.Dispose();

    /// <summary>One log line per 10 s while shedding, with the count: a storm must not flood the log as well.</summary>
    private void LogNowAndThen()
    {
        var now = timeProvider.GetTimestamp();
        var last = Interlocked.Read(ref _lastLogTimestamp);
        if ((last == 0 || timeProvider.GetElapsedTime(last, now) >= LogEvery) && Interlocked.CompareExchange(ref _lastLogTimestamp, now, last) == last)
        {
            var shed = Shed;
            LogShedding(logger, shed - Interlocked.Exchange(ref _shedLogged, shed), Limits.MaxConcurrent, Limits.MaxWaiting);
        }
    }

    [LoggerMessage(EventId = GatewayEventIds.HandshakesShed, Level = LogLevel.Warning,
        Message = "Device listener at its handshake capacity ({MaxConcurrent} at once, {MaxWaiting} waiting): {Count} new connection(s) refused with a TLS alert (listener_busy) since the last report")]
    private static partial void LogShedding(ILogger logger, long count, int maxConcurrent, int maxWaiting);

    /// <summary>A handshake slot, given back once (after the handshake, or when the connection ends before it).</summary>
    public sealed class Slot(SemaphoreSlim slots) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                slots.Release();
            }
        }
    }
}

public static class DeviceListenerExtensions
{
    private static readonly object SlotKey = new();

    /// <summary>
    /// The device listener's connection pipeline: handshake admission, mutual TLS (<see cref="DeviceTlsHandshake"/>),
    /// the slot given back as soon as the handshake is done, then the connection tracked for its lifetime.
    /// </summary>
    public static ListenOptions UseDeviceTls(this ListenOptions listenOptions)
    {
        ArgumentNullException.ThrowIfNull(listenOptions);
        var admission = listenOptions.ApplicationServices.GetRequiredService<DeviceHandshakeAdmission>();
        var handshake = listenOptions.ApplicationServices.GetRequiredService<DeviceTlsHandshake>();
        listenOptions.Use(next => async connection =>
        {
            switch (await ClientHelloAsync(connection))
            {
                case FirstRecord.Silent:
                    admission.Record(connection, ReasonCode.TlsHandshakeFailed); // no whole ClientHello within the handshake timeout: closed
                    return;
                case FirstRecord.Gone:
                    return; // the peer left before saying anything
            }

            using var slot = await admission.EnterAsync(connection.ConnectionClosed);
            if (slot is null)
            {
                if (!connection.ConnectionClosed.IsCancellationRequested)
                {
                    await admission.ShedAsync(connection);
                }

                return;
            }

            connection.Items[SlotKey] = slot;
            await next(connection); // a failed handshake never reaches the next step: the slot goes back here
        });
        listenOptions.UseHttps(handshake.CreateCallbackOptions());
        listenOptions.Use(next => connection =>
        {
            if (connection.Items.TryGetValue(SlotKey, out var slot) && slot is DeviceHandshakeAdmission.Slot held)
            {
                held.Dispose(); // handshake done: the slot is the next connection's
                connection.Items.Remove(SlotKey);
            }

            return next(connection);
        });
        return listenOptions.UseDeviceConnectionTracking();
    }

    /// <summary>
    /// Waits (at most the handshake timeout) until the connection's first TLS record, its ClientHello, is all here,
    /// and leaves it unread for TLS. A slot is for a handshake the server can work on: connections that send nothing,
    /// or dribble their first bytes, hold none, so a few idle sockets cannot keep honest units out.
    /// </summary>
    private static async Task<FirstRecord> ClientHelloAsync(ConnectionContext connection)
    {
        const int HeaderLength = 5;
        const int MaxRecord = HeaderLength + 16_384 + 2_048; // TLSPlaintext (RFC 8446 5.1), with room for old stacks
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
        timeout.CancelAfter(DeviceTlsHandshake.HandshakeTimeout);
        var input = connection.Transport.Input;
        try
        {
            while (true)
            {
                var read = await input.ReadAsync(timeout.Token);
                var buffer = read.Buffer;
                var complete = buffer.Length >= HeaderLength && RecordLength(buffer) is var length
                    && (length < 0 || buffer.Length >= HeaderLength + length || HeaderLength + length > MaxRecord);
                if (complete)
                {
                    input.AdvanceTo(buffer.Start); // nothing consumed: TLS reads it all (and judges anything that is not TLS)
                    return FirstRecord.Arrived;
                }

                if (read.IsCompleted)
                {
                    input.AdvanceTo(buffer.End);
                    return FirstRecord.Gone;
                }

                input.AdvanceTo(buffer.Start, buffer.End); // looked at it all: wait for more
            }
        }
        catch (OperationCanceledException)
        {
            return connection.ConnectionClosed.IsCancellationRequested ? FirstRecord.Gone : FirstRecord.Silent;
        }
    }

    private enum FirstRecord
    {
        Arrived,
        Gone,
        Silent,
    }

    /// <summary>The length a handshake record's header announces, or -1 when the first byte is not a handshake record.</summary>
    private static int RecordLength(in ReadOnlySequence<byte> buffer)
    {
        Span<byte> header = stackalloc byte[5];
        buffer.Slice(0, 5).CopyTo(header);
        return header[0] == 0x16 ? (header[3] << 8) | header[4] : -1;
    }
}
