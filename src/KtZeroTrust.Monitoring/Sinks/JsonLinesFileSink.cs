using System.Buffers;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Monitoring.Pipeline;

namespace KtZeroTrust.Monitoring.Sinks;

/// <summary>
/// The local decision log: one JSON object per line, appended with one write and flush per batch. When the file passes
/// <paramref name="maxFileBytes"/> it is rolled to <c>decisions-&lt;utc time&gt;.jsonl</c> and a new one begins.
/// </summary>
public sealed class JsonLinesFileSink(string path, long maxFileBytes = 256L * 1024 * 1024, string name = "file") : IDecisionExportSink, IAsyncDisposable
{
    private FileStream? _file;

    private readonly string _path = Path.GetFullPath(path);
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);

    /// <summary>The lane's name (spool, checkpoint, metrics); unique per pipeline.</summary>
    public string Name => name;

    public string FilePath => _path;

    public async Task WriteBatchAsync(IReadOnlyList<JournaledDecision> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
        _buffer.Clear();
        foreach (var e in batch)
        {
            _buffer.Write(e.Json.Span); // the pipeline's one serialization of it
            _buffer.Write("\n"u8);
        }

        try
        {
            var file = Open();
            if (file.Position > maxFileBytes)
            {
                await file.DisposeAsync();
                _file = null;
                var rolled = Path.Combine(Path.GetDirectoryName(_path)!, $"{Path.GetFileNameWithoutExtension(_path)}-{DateTime.UtcNow:yyyyMMddTHHmmssfff}.jsonl");
                File.Move(_path, rolled);
                file = Open();
            }

            var before = file.Position; // appends only: the position is the length, without a stat per batch
            try
            {
                await file.WriteAsync(_buffer.WrittenMemory, cancellationToken);
                await file.FlushAsync(cancellationToken);
            }
            catch (IOException)
            {
                // A full disk takes part of a write: cut back to the last complete line, so the log never holds a torn one.
                file.SetLength(before);
                throw;
            }
        }
        catch (IOException)
        {
            // Reopened on the next batch (the file may have been moved or the disk replaced); this batch is retried.
            await CloseAsync();
            throw;
        }
    }

    /// <summary>Kept open between batches: an open, a seek and a close per batch cost more than the write.</summary>
    private FileStream Open()
    {
        if (_file is null || !File.Exists(_path))
        {
            _file?.Dispose();
            // Not FileMode.Append: a failed write must be cut back (SetLength before the append point).
            _file = new FileStream(_path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1, useAsync: true);
            _file.Seek(0, SeekOrigin.End);
        }

        return _file;
    }

    private async Task CloseAsync()
    {
        if (_file is { } file)
        {
            _file = null;
            await file.DisposeAsync();
        }
    }

    public ValueTask DisposeAsync() => new(CloseAsync());
}
