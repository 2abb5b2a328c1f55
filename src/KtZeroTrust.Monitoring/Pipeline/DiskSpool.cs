using System.Buffers.Binary;
using KtZeroTrust.Monitoring.DecisionLog;

namespace KtZeroTrust.Monitoring.Pipeline;

/// <summary>
/// An append-only, on-disk queue of decisions for one sink that is slow or down. Records are length-prefixed JSON in a
/// single file; a batch is appended with one write and one flush (group commit). The read position is kept in a small
/// file next to it, so a restart resumes replay where it stopped; replay is in order and at least once (an event whose
/// write succeeded just before a crash may be replayed: sinks de-duplicate by event id). Once fully replayed the file is
/// truncated.
/// </summary>
public sealed class DiskSpool
{
    private readonly string _dataPath;
    private readonly string _positionPath;
    private readonly object _gate = new();
    private long _readPosition;

    public DiskSpool(string directory, string name)
    {
        Directory.CreateDirectory(directory);
        _dataPath = Path.Combine(directory, name + ".spool");
        _positionPath = Path.Combine(directory, name + ".position");
        _readPosition = File.Exists(_positionPath) && long.TryParse(File.ReadAllText(_positionPath), System.Globalization.CultureInfo.InvariantCulture, out var p) ? p : 0;
        RepairTail();
    }

    /// <summary>A crash in the middle of an append leaves a partial record at the end: cut it off before appending more.</summary>
    private void RepairTail()
    {
        if (!File.Exists(_dataPath))
        {
            return;
        }

        long good;
        using (var file = new FileStream(_dataPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            good = Math.Min(_readPosition, file.Length);
            file.Position = good;
            Span<byte> length = stackalloc byte[4];
            while (file.Read(length) == 4)
            {
                var size = BinaryPrimitives.ReadInt32BigEndian(length);
                if (size <= 0 || size > 1 << 20 || file.Position + size > file.Length)
                {
                    break;
                }

                file.Position += size;
                good = file.Position;
            }
        }

        if (good < new FileInfo(_dataPath).Length)
        {
            using var truncate = new FileStream(_dataPath, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
            truncate.SetLength(good);
        }
    }

    /// <summary>Bytes not yet replayed.</summary>
    public long PendingBytes
    {
        get
        {
            lock (_gate)
            {
                return File.Exists(_dataPath) ? Math.Max(0, new FileInfo(_dataPath).Length - _readPosition) : 0;
            }
        }
    }

    public bool IsEmpty => PendingBytes == 0;

    /// <summary>Appends a batch durably (one write, one flush). Throws IOException when the disk refuses (full).</summary>
    public void Append(IReadOnlyList<JournaledDecision> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        using var buffer = new MemoryStream();
        Span<byte> length = stackalloc byte[4];
        foreach (var e in batch)
        {
            BinaryPrimitives.WriteInt32BigEndian(length, e.Json.Length);
            buffer.Write(length);
            buffer.Write(e.Json.Span);
        }

        lock (_gate)
        {
            using var file = new FileStream(_dataPath, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read, 1);
            var before = file.Seek(0, SeekOrigin.End);
            try
            {
                buffer.Position = 0;
                buffer.CopyTo(file);
                file.Flush(flushToDisk: true);
            }
            catch (IOException)
            {
                file.SetLength(before); // no torn record left behind by a full disk
                throw;
            }
        }
    }

    /// <summary>Reads up to <paramref name="max"/> events from the read position, and the position after them.</summary>
    public (List<JournaledDecision> Events, long Next) Peek(int max)
    {
        lock (_gate)
        {
            var events = new List<JournaledDecision>();
            if (!File.Exists(_dataPath))
            {
                return (events, _readPosition);
            }

            using var file = new FileStream(_dataPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            file.Position = _readPosition;
            Span<byte> length = stackalloc byte[4];
            var position = _readPosition;
            while (events.Count < max && file.Read(length) == 4)
            {
                var size = BinaryPrimitives.ReadInt32BigEndian(length);
                if (size <= 0 || size > 1 << 20)
                {
                    throw new InvalidDataException($"Spool {_dataPath} is damaged at byte {position}.");
                }

                var json = new byte[size];
                if (file.Read(json) != size)
                {
                    break; // a torn write at the end (crash mid-append): stop before it
                }

                events.Add(JournaledDecision.Read(json, 0)); // the bytes as stored; the spool keeps no journal position
                position += 4 + size;
            }

            return (events, position);
        }
    }

    /// <summary>Marks everything before <paramref name="position"/> as delivered; truncates the file once all is.</summary>
    public void Commit(long position)
    {
        lock (_gate)
        {
            _readPosition = position;
            if (File.Exists(_dataPath) && new FileInfo(_dataPath).Length <= position)
            {
                File.Delete(_dataPath);
                _readPosition = 0;
            }

            var temp = _positionPath + ".tmp";
            File.WriteAllText(temp, _readPosition.ToString(System.Globalization.CultureInfo.InvariantCulture));
            File.Move(temp, _positionPath, overwrite: true);
        }
    }
}
