using System.Buffers;
using System.Text.Json;
using System.Threading.Channels;
using KtZeroTrust.Core.Decisions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KtZeroTrust.Monitoring.DecisionLog;

/// <summary>
/// Appends every decision as one JSON line to a local file. Posting only enqueues (never blocks the request);
/// a single writer drains the queue in batches and flushes once per batch. Pending decisions are written on shutdown.
/// </summary>
public sealed partial class JsonLinesDecisionLog : BackgroundService, IDecisionSink
{
    // Unbounded so that nothing is dropped; the decision-stream work replaces this with a bounded buffer plus disk spool.
    private readonly Channel<DecisionEvent> _queue = Channel.CreateUnbounded<DecisionEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly string _path;
    private readonly ILogger<JsonLinesDecisionLog> _logger;

    public JsonLinesDecisionLog(string path, ILogger<JsonLinesDecisionLog> logger)
    {
        _path = Path.GetFullPath(path);
        _logger = logger;
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
    }

    public string FilePath => _path;

    public void Post(DecisionEvent decision) => _queue.Writer.TryWrite(decision);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        LogStarted(_logger, _path);
        var buffer = new ArrayBufferWriter<byte>(16 * 1024);
        await using var json = new Utf8JsonWriter(buffer);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken))
            {
                await DrainAsync(buffer, json, CancellationToken.None);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: write what is still queued below.
        }

        _queue.Writer.TryComplete();
        while (await DrainAsync(buffer, json, CancellationToken.None) > 0)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        // The host may stop the service before ExecuteAsync ever ran (it starts on the thread pool): write what is queued.
        _queue.Writer.TryComplete();
        var buffer = new ArrayBufferWriter<byte>(16 * 1024);
        await using var json = new Utf8JsonWriter(buffer);
        while (await DrainAsync(buffer, json, CancellationToken.None) > 0)
        {
        }
    }

    private async Task<int> DrainAsync(ArrayBufferWriter<byte> buffer, Utf8JsonWriter json, CancellationToken cancellationToken)
    {
        var count = 0;
        while (_queue.Reader.TryRead(out var decision))
        {
            json.Reset(buffer);
            DecisionJson.Write(json, decision);
            json.Flush();
            buffer.Write("\n"u8);
            count++;
            if (buffer.WrittenCount > 256 * 1024)
            {
                break;
            }
        }

        if (count == 0)
        {
            return 0;
        }

        while (true)
        {
            try
            {
                await using var file = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1, useAsync: true);
                await file.WriteAsync(buffer.WrittenMemory, cancellationToken);
                await file.FlushAsync(cancellationToken);
                buffer.Clear();
                return count;
            }
            catch (IOException ex)
            {
                // A full disk or a vanished directory: keep the batch and retry rather than lose decisions.
                LogWriteFailed(_logger, ex, _path, count);
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
                Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
            }
        }
    }

    [LoggerMessage(EventId = MonitoringEventIds.DecisionLogStarted, Level = LogLevel.Information, Message = "Decision log: {Path}")]
    private static partial void LogStarted(ILogger logger, string path);

    [LoggerMessage(EventId = MonitoringEventIds.DecisionLogWriteFailed, Level = LogLevel.Error, Message = "Writing {Count} decisions to {Path} failed; retrying")]
    private static partial void LogWriteFailed(ILogger logger, Exception exception, string path, int count);
}
