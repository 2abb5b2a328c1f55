using System.Runtime.CompilerServices;
using System.Text;
using KtZeroTrust.Core.Decisions;

namespace KtZeroTrust.Monitoring.DecisionLog;

/// <summary>Reads the local decision log and its rolled predecessors, oldest first; lines that are not decisions are skipped.</summary>
public static class DecisionLogReader
{
    /// <summary>
    /// Every decision with the bytes the log holds (a reader can pass them on without writing them again): the rolled
    /// files and the current one, or with <paramref name="onlyThisFile"/> just the file <paramref name="path"/> names.
    /// </summary>
    public static async IAsyncEnumerable<JournaledDecision> ReadAsync(string path, bool onlyThisFile = false, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var file in onlyThisFile ? (File.Exists(path) ? [path] : []) : Files(path))
        {
            await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                if (!string.IsNullOrWhiteSpace(line) && TryRead(Encoding.UTF8.GetBytes(line)) is { } e)
                {
                    yield return e;
                }
            }
        }
    }

    /// <summary>The rolled files (oldest first), then the current one; only those that exist.</summary>
    public static IEnumerable<string> Files(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var rolled = Directory.Exists(directory)
            ? Directory.GetFiles(directory, Path.GetFileNameWithoutExtension(path) + "-*.jsonl").Order(StringComparer.Ordinal)
            : Enumerable.Empty<string>();
        return rolled.Append(path).Where(File.Exists);
    }

    public static DecisionEvent? TryParse(string? line)
        => string.IsNullOrWhiteSpace(line) ? null : TryRead(Encoding.UTF8.GetBytes(line))?.Event;

    /// <summary>One stored decision, or null for a torn or foreign line (skipped; the rest is still read).</summary>
    public static JournaledDecision? TryRead(ReadOnlyMemory<byte> json)
    {
        if (json.IsEmpty)
        {
            return null;
        }

        try
        {
            return JournaledDecision.Read(json, 0);
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or FormatException or InvalidOperationException)
        {
            return null;
        }
    }
}
