using System.ComponentModel.DataAnnotations;

namespace KtZeroTrust.Hosting.Node;

/// <summary>What every role needs to know about the process it runs in. Bound from <c>ZeroTrust</c>.</summary>
public sealed class NodeOptions
{
    public const string SectionName = "ZeroTrust";

    /// <summary>This node's name on every decision, metric and lease. Default: the machine name.</summary>
    [RegularExpression(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", ErrorMessage = "ZeroTrust:Node is 1-63 letters, digits, '.', '_' or '-'.")]
    public string? Node { get; set; }

    /// <summary>Registry, decision log and other state. Relative paths resolve against the working directory. Default <c>data</c>.</summary>
    [Required(AllowEmptyStrings = false, ErrorMessage = "ZeroTrust:DataDirectory must name a directory.")]
    public string DataDirectory { get; set; } = "data";

    public string Name => Node is { Length: > 0 } node ? node : Environment.MachineName;

    /// <summary>The data directory as an absolute path.</summary>
    public string DataPath => Path.GetFullPath(DataDirectory);

    /// <summary>A file or directory inside the data directory.</summary>
    public string PathOf(string name) => Path.Combine(DataPath, name);
}
