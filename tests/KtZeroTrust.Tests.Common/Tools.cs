using System.Diagnostics;

namespace KtZeroTrust.Tests.Common;

/// <summary>Runs an outside client (openssl, curl, strongSwan's tools) the way an operator would, bounded in time.</summary>
public static class Tools
{
    /// <summary>The exit code and everything the tool printed (stdout, then stderr: openssl reports on stderr).</summary>
    public static Task<(int Exit, string Output)> RunAsync(string file, IEnumerable<string> args, CancellationToken cancellationToken = default)
        => RunAsync(file, args, TimeSpan.FromSeconds(90), cancellationToken);

    /// <summary>As above, for a tool that may take longer than the default 90 s.</summary>
    public static async Task<(int Exit, string Output)> RunAsync(string file, IEnumerable<string> args, TimeSpan limit, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{file} did not start.");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken).WaitAsync(limit, cancellationToken);
        return (process.ExitCode, await output + await error);
    }

    /// <summary>As <see cref="RunAsync"/>, and a non-zero exit is an exception carrying the output.</summary>
    public static async Task<string> RunCheckedAsync(string file, IEnumerable<string> args, CancellationToken cancellationToken = default)
    {
        var (exit, output) = await RunAsync(file, args, cancellationToken);
        return exit == 0 ? output : throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {exit}: {output}");
    }
}
