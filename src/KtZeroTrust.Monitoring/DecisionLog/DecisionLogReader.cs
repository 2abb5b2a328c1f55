using System.Runtime.CompilerServices;
using System.Text;

namespace KtZeroTrust.Monitoring.DecisionLog;

/// <summary>Reads the local decision log and its rolled predecessors, oldest first; lines that are not decisions are skipped.</summary>
public static class DecisionLogReader
{
    public static async IAsyncEnumerable<Core.Decisions.DecisionEvent> ReadAsync(string path, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var rolled = Directory.Exists(directory)
            ? Directory.GetFiles(directory, Path.GetFileNameWithoutExtension(path) + "-*.jsonl").Order(StringComparer.Ordinal)
            : Enumerable.Empty<string>();
        foreach (var file in rolled.Append(path).Where(File.Exists))
        {
            await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                if (TryParse(line) is { } e)
                {
                    yield return e;
                }
            }
        }
    }

    public static Core.Decisions.DecisionEvent? TryParse(string? line)
        => string.IsNullOrWhiteSpace(line) ? null : TryParse(Encoding.UTF8.GetBytes(line));

    public static Core.Decisions.DecisionEvent? TryParse(ReadOnlySpan<byte> json)
    {
        if (json.IsEmpty)
        {
            return null;
        }

        try
        {
            return DecisionJson.Read(json);
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or FormatException or InvalidOperationException)
        {
            return null; // a torn or foreign line: skipped, the rest is still read
        }
    }
}
