using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using KtZeroTrust.Monitoring.DecisionLog;

namespace KtZeroTrust.Monitoring.Pipeline;

/// <summary>
/// The node's write-ahead journal of decisions: every decision is appended here (group-committed, one write per batch)
/// before the request that made it completes, and before any sink sees it. Each sink's delivered position is kept as a
/// checkpoint; at start, whatever a sink had not taken durably when the process died is replayed to it from here. So a
/// killed process loses no decision it answered, whatever state its sinks were in (Redis down, OTLP slow).
/// Records: length (4, big-endian) | sequence (8) | JSON. Segments <c>NNNNNNNNNNNNNNNNNNNN.journal</c> (first sequence),
/// rolled at <see cref="SegmentBytes"/>, deleted once every sink is past them. Appends go to the operating system's page
/// cache without fsync: they survive the process, not a power cut (the sinks' own spools are fsynced).
/// </summary>
public sealed class DecisionJournal : IDisposable
{
    public const long SegmentBytes = 16L * 1024 * 1024;
    private const string Extension = ".journal";
    private const int HeaderBytes = 12;

    private readonly string _directory;
    private readonly string _checkpointPath;
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);
    // The segments' first sequences, oldest first: the journal alone writes this directory, so it is listed once.
    private readonly List<long> _segments;
    private FileStream? _segment;

    public DecisionJournal(string directory)
    {
        _directory = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(_directory);
        _checkpointPath = Path.Combine(_directory, "checkpoints.json");
        _segments = ListSegments();
        LastSequence = RepairAndFindLast();
    }

    /// <summary>The sequence of the last decision journaled (0: none ever).</summary>
    public long LastSequence { get; private set; }

    public string Directory => _directory;

    /// <summary>Appends a batch whose events carry consecutive sequences; on failure the partial write is cut off and the exception rethrown.</summary>
    public void Append(IReadOnlyList<JournaledDecision> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
        {
            return;
        }

        _buffer.Clear();
        foreach (var e in batch)
        {
            // The header is filled in once the JSON's length is known.
            _buffer.GetSpan(HeaderBytes)[..HeaderBytes].Clear();
            _buffer.Advance(HeaderBytes);
            var start = _buffer.WrittenCount;
            _buffer.Write(e.Json.Span);
            var header = System.Runtime.InteropServices.MemoryMarshal.AsMemory(_buffer.WrittenMemory).Span[(start - HeaderBytes)..start];
            BinaryPrimitives.WriteInt32BigEndian(header, _buffer.WrittenCount - start);
            BinaryPrimitives.WriteInt64BigEndian(header[4..], e.Sequence);
        }

        var file = Segment(batch[0].Sequence);
        var before = file.Position; // appends only: the position is the length, without asking the file system
        try
        {
            file.Write(_buffer.WrittenSpan);
            file.Flush(flushToDisk: false);
        }
        catch (IOException)
        {
            Cut(file, before);
            throw;
        }

        LastSequence = batch[^1].Sequence;
    }

    /// <summary>Every journaled event with a sequence above <paramref name="after"/>, in order (recovery).</summary>
    public IEnumerable<JournaledDecision> ReadAfter(long after)
    {
        for (var i = 0; i < _segments.Count; i++)
        {
            if (i + 1 < _segments.Count && _segments[i + 1] - 1 <= after)
            {
                continue; // wholly delivered
            }

            foreach (var e in ReadSegment(PathOf(_segments[i])).Where(e => e.Sequence > after))
            {
                yield return e;
            }
        }
    }

    /// <summary>The checkpoints saved by <see cref="SaveCheckpoints"/>: per sink, the last sequence it holds durably.</summary>
    public Dictionary<string, long> LoadCheckpoints()
    {
        try
        {
            return File.Exists(_checkpointPath) ? JsonSerializer.Deserialize<Dictionary<string, long>>(File.ReadAllText(_checkpointPath)) ?? [] : [];
        }
        catch (JsonException)
        {
            return []; // unreadable: every sink is replayed from the journal's start (at least once, never less)
        }
    }

    /// <summary>Saves the sinks' positions (write and rename: a crash leaves the old or the new file) and drops segments all are past.</summary>
    public void SaveCheckpoints(IReadOnlyDictionary<string, long> checkpoints)
    {
        ArgumentNullException.ThrowIfNull(checkpoints);
        var temp = _checkpointPath + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(checkpoints));
        File.Move(temp, _checkpointPath, overwrite: true);
        var delivered = checkpoints.Count == 0 ? LastSequence : checkpoints.Values.Min();
        // Every segment but the one being written ends where the next begins.
        while (_segments.Count > 1 && _segments[1] - 1 <= delivered)
        {
            File.Delete(PathOf(_segments[0]));
            _segments.RemoveAt(0);
        }
    }

    public void Dispose()
    {
        _segment?.Dispose();
    }

    private FileStream Segment(long firstSequence)
    {
        if (_segment is not null && _segment.Position < SegmentBytes)
        {
            return _segment;
        }

        _segment?.Dispose();
        if (_segment is not null || _segments.Count == 0)
        {
            _segments.Add(firstSequence); // a new segment (after a roll, or the very first)
        }

        // At open the last segment is continued (its torn tail was cut), so sequences stay in file order.
        _segment = new FileStream(PathOf(_segments[^1]), FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read | FileShare.Delete, 1);
        _segment.Seek(0, SeekOrigin.End);
        return _segment;
    }

    private string PathOf(long first) => Path.Combine(_directory, first.ToString("D20", CultureInfo.InvariantCulture) + Extension);

    private static void Cut(FileStream file, long length)
    {
        try
        {
            file.SetLength(length);
            file.Seek(0, SeekOrigin.End);
        }
        catch (IOException)
        {
            // A torn tail that cannot be cut now is cut at the next start (RepairAndFindLast).
        }
    }

    private List<long> ListSegments()
        => [.. System.IO.Directory.EnumerateFiles(_directory, "*" + Extension)
            .Select(p => long.TryParse(Path.GetFileNameWithoutExtension(p), NumberStyles.None, CultureInfo.InvariantCulture, out var f) ? f : -1)
            .Where(f => f >= 0).Order()];

    /// <summary>Cuts a torn last record (a crash or a full disk mid-append) and returns the last good sequence.</summary>
    private long RepairAndFindLast()
    {
        if (_segments.Count == 0)
        {
            return 0;
        }

        var path = PathOf(_segments[^1]);
        long good = 0, last = _segments[^1] - 1;
        using (var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            Span<byte> header = stackalloc byte[HeaderBytes];
            while (file.Read(header) == HeaderBytes)
            {
                var length = BinaryPrimitives.ReadInt32BigEndian(header);
                if (length <= 0 || length > 1 << 20 || file.Position + length > file.Length)
                {
                    break;
                }

                last = BinaryPrimitives.ReadInt64BigEndian(header[4..]);
                file.Position += length;
                good = file.Position;
            }
        }

        if (good < new FileInfo(path).Length)
        {
            using var cut = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
            cut.SetLength(good);
        }

        return Math.Max(last, 0);
    }

    private static IEnumerable<JournaledDecision> ReadSegment(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var header = new byte[HeaderBytes];
        while (file.Read(header) == HeaderBytes)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(header);
            if (length <= 0 || length > 1 << 20 || file.Position + length > file.Length)
            {
                yield break; // a torn tail
            }

            var json = new byte[length];
            file.ReadExactly(json);
            JournaledDecision? e;
            try
            {
                e = JournaledDecision.Read(json, BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(4)));
            }
            catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException or KeyNotFoundException)
            {
                e = null; // one damaged record costs only itself
            }

            if (e is not null)
            {
                yield return e;
            }
        }
    }
}
