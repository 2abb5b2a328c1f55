using System.Diagnostics;
using System.Text.Json;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Monitoring.Pipeline;
using KtZeroTrust.Monitoring.Sinks;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.Logging.Abstractions;

namespace KtZeroTrust.Monitoring.Tests;

/// <summary>A real full disk: a 256 KiB tmpfs mounted for the test (root only, as in CI), unmounted afterwards.</summary>
public sealed class FullDiskTests : IDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly TempDirectory _temp = new("full-disk");
    private readonly string _mount;
    private readonly bool _mounted;

    public FullDiskTests()
    {
        _mount = _temp.Combine("small");
        Directory.CreateDirectory(_mount);
        _mounted = Environment.UserName == "root" && Run("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", _mount) == 0;
    }

    [Fact]
    public async Task AFullDisk_LeavesNoTornLine_TheSinkIsReportedFailingAndBehind_AndAnAlertIsRaised()
    {
        Assert.SkipUnless(_mounted, "needs root to mount a small tmpfs (CI runs as root)");
        var log = new JsonLinesFileSink(Path.Combine(_mount, "decisions.jsonl"));
        var alerts = new JsonLinesFileSink(_temp.Combine("alerts.jsonl"), name: "archive"); // another volume: it keeps working
        var pipeline = new DecisionPipeline([log, alerts],
            new DecisionPipelineOptions { SpoolDirectory = _temp.Combine("spool"), RetryDelay = TimeSpan.FromMilliseconds(50), SinkFailingAlertAfter = TimeSpan.FromMilliseconds(300) },
            NullLogger<DecisionPipeline>.Instance);
        await pipeline.StartAsync(Ct);

        var i = 0;
        await Eventually.Until(() =>
        {
            for (var n = 0; n < 200; n++)
            {
                pipeline.Post(Events.Make(i++));
            }

            return Task.FromResult(pipeline.Sinks[0].FailingSince is not null);
        }, failing => failing, "the decision log's disk to fill up");

        Assert.True(pipeline.Sinks[0].Behind, "a failing sink must be reported behind");
        Assert.Contains("ktzt_sink_failing{sink=\"file\"} 1", PipelineMetrics.Render(pipeline), StringComparison.Ordinal);
        await Eventually.Until(async () =>
        {
            pipeline.Post(Events.Make(i++)); // the health check runs with the dispatch
            await Task.Delay(50);
            return File.Exists(alerts.FilePath) && (await ReadLinesAsync(alerts.FilePath)).Any(l => l.Contains("decision_sink_failing", StringComparison.Ordinal));
        }, found => found, "the decision_sink_failing alert");

        // What is on the full disk is whole lines only.
        var bytes = await File.ReadAllBytesAsync(log.FilePath, Ct);
        Assert.True(bytes.Length > 0 && bytes[^1] == (byte)'\n', "the log ends in a torn line");
        foreach (var line in (await ReadLinesAsync(log.FilePath)).Where(l => l.Length > 0))
        {
            JsonDocument.Parse(line).Dispose();
        }

        pipeline.Dispose();
    }

    private static async Task<string[]> ReadLinesAsync(string path)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return (await reader.ReadToEndAsync()).Split('\n');
    }

    private static int Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        try
        {
            using var process = Process.Start(info)!;
            process.WaitForExit(10_000);
            return process.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return -1;
        }
    }

    public void Dispose()
    {
        if (_mounted)
        {
            Run("umount", "-l", _mount);
        }

        _temp.Dispose();
    }
}
