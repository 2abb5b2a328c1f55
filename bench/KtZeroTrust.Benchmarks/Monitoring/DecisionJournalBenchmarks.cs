using BenchmarkDotNet.Attributes;
using KtZeroTrust.Monitoring.DecisionLog;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.Pipeline;

namespace KtZeroTrust.Benchmarks.Monitoring;

/// <summary>
/// What the journal costs per decision: one append per dispatch batch (serialization and one write to the page cache).
/// Batch sizes: 1 (a quiet node, a lone waiting request), 16 and 64 (busy nodes).
/// </summary>
[MemoryDiagnoser]
public class DecisionJournalBenchmarks
{
    private DecisionJournal _journal = null!;
    private JournaledDecision[] _batch = null!;
    private string _directory = null!;
    private long _sequence;

    [Params(1, 16, 64)]
    public int BatchSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _directory = Directory.CreateTempSubdirectory("ktzt-bench-journal-").FullName;
        _journal = new DecisionJournal(_directory);
        _batch = JournaledDecision.Serialize([.. Enumerable.Range(0, BatchSize).Select(_ => SampleDecision.Allowed())], 1);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _journal.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>One batch appended; divide by <see cref="BatchSize"/> for the cost per decision.</summary>
    [Benchmark]
    public long Append()
    {
        // Consecutive sequences, as the dispatcher gives them; the JSON was written once, by the dispatcher.
        for (var i = 0; i < _batch.Length; i++)
        {
            _batch[i] = new JournaledDecision(_batch[i].Event, ++_sequence, _batch[i].Json);
        }

        _journal.Append(_batch);
        return _journal.LastSequence;
    }
}
