using System.Text.RegularExpressions;
using System.Xml.Linq;
using KtZeroTrust.Tests.Common;

namespace KtZeroTrust.Core.Tests;

/// <summary>
/// The arrows allowed between the projects (docs/architecture.md): shared layers below, roles above them, no role
/// referencing another, the composition root (Server) and the CLI on top. A new reference outside these fails here.
/// </summary>
public sealed class ArchitectureTests
{
    private static readonly Dictionary<string, string[]> Allowed = new(StringComparer.Ordinal)
    {
        ["KtZeroTrust.Core"] = [],
        ["KtZeroTrust.Pki"] = ["KtZeroTrust.Core"],
        ["KtZeroTrust.Redis"] = ["KtZeroTrust.Pki"],
        ["KtZeroTrust.Registry"] = ["KtZeroTrust.Core", "KtZeroTrust.Redis"],
        ["KtZeroTrust.Hosting"] = ["KtZeroTrust.Core"],
        // Roles: each on the shared layers only.
        ["KtZeroTrust.Monitoring"] = ["KtZeroTrust.Core", "KtZeroTrust.Hosting", "KtZeroTrust.Redis"],
        ["KtZeroTrust.Gateway"] = ["KtZeroTrust.Core", "KtZeroTrust.Hosting", "KtZeroTrust.Pki", "KtZeroTrust.Redis", "KtZeroTrust.Registry"],
        ["KtZeroTrust.Gateway.EntraId"] = ["KtZeroTrust.Gateway"],
        ["KtZeroTrust.Attestation"] = ["KtZeroTrust.Core", "KtZeroTrust.Hosting", "KtZeroTrust.Pki", "KtZeroTrust.Redis", "KtZeroTrust.Registry"],
        // The console reads the decision stream's own format (Monitoring's readers) and is a lane of the pipeline.
        ["KtZeroTrust.Console"] = ["KtZeroTrust.Core", "KtZeroTrust.Hosting", "KtZeroTrust.Monitoring", "KtZeroTrust.Redis"],
        // On top.
        ["KtZeroTrust.Cli"] = ["KtZeroTrust.Core", "KtZeroTrust.Pki", "KtZeroTrust.Registry", "KtZeroTrust.Monitoring"],
        ["KtZeroTrust.Server"] = ["KtZeroTrust.Core", "KtZeroTrust.Hosting", "KtZeroTrust.Pki", "KtZeroTrust.Registry", "KtZeroTrust.Monitoring", "KtZeroTrust.Gateway", "KtZeroTrust.Gateway.EntraId", "KtZeroTrust.Attestation", "KtZeroTrust.Console"],
    };

    /// <summary>Packages that pin a project to one role: YARP belongs to the gateway, Identity.Web to its Entra ID part.</summary>
    private static readonly Dictionary<string, string[]> PackageOwners = new(StringComparer.Ordinal)
    {
        ["Yarp.ReverseProxy"] = ["KtZeroTrust.Gateway"],
        ["Microsoft.Identity.Web"] = ["KtZeroTrust.Gateway.EntraId"],
    };

    public static TheoryData<string> Projects() => [.. ProjectNames()];

    private static IEnumerable<string> ProjectNames() => Directory.GetDirectories(Path.Combine(RepositoryPaths.Root, "src")).Select(Path.GetFileName).OfType<string>().Order();

    [Theory]
    [MemberData(nameof(Projects))]
    public void Project_ReferencesOnlyWhatTheLayeringAllows(string project)
    {
        Assert.True(Allowed.TryGetValue(project, out var allowed), $"{project} is not in the project graph of docs/architecture.md (and of this test)");
        var csproj = XDocument.Load(Path.Combine(RepositoryPaths.Root, "src", project, project + ".csproj"));
        var references = csproj.Descendants("ProjectReference").Select(r => Path.GetFileNameWithoutExtension((string)r.Attribute("Include")!)).ToList();
        Assert.All(references, r => Assert.Contains(r, allowed));
        foreach (var package in csproj.Descendants("PackageReference").Select(p => (string)p.Attribute("Include")!))
        {
            if (PackageOwners.TryGetValue(package, out var owners))
            {
                Assert.Contains(project, owners);
            }
        }
    }

    /// <summary>Every project but Core: Core is the shared vocabulary (records and interfaces), one layer whose folders name each other.</summary>
    public static TheoryData<string> FoldersAsLayers() => [.. ProjectNames().Where(p => p != "KtZeroTrust.Core")];

    /// <summary>
    /// Inside a project, the folders (namespaces) form layers too: the gateway's identity, allow list, policy,
    /// enforcement and forwarding may depend on each other only one way. A folder's dependencies are the project's
    /// other namespaces its files name (in a using directive or fully qualified); a cycle fails and is named.
    /// </summary>
    [Theory]
    [MemberData(nameof(FoldersAsLayers))]
    public void Project_NamespacesHaveNoCycles(string project)
    {
        var root = Path.Combine(RepositoryPaths.Root, "src", project);
        var rootNamespace = project == "KtZeroTrust.Console" ? "KtZeroTrust.SocConsole" : project;
        var reference = new Regex(Regex.Escape(rootNamespace) + @"\.([A-Z][A-Za-z0-9]*)", RegexOptions.CultureInvariant);
        var edges = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(root, file);
            if (relative.StartsWith("obj", StringComparison.Ordinal) || relative.StartsWith("bin", StringComparison.Ordinal) || !relative.Contains(Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                continue; // top-level files (registration, options, event ids) sit above or below every folder
            }

            var folder = relative[..relative.IndexOf(Path.DirectorySeparatorChar, StringComparison.Ordinal)];
            var uses = edges.TryGetValue(folder, out var set) ? set : edges[folder] = new HashSet<string>(StringComparer.Ordinal);
            foreach (Match m in reference.Matches(File.ReadAllText(file)))
            {
                if (m.Groups[1].Value != folder && Directory.Exists(Path.Combine(root, m.Groups[1].Value)))
                {
                    uses.Add(m.Groups[1].Value);
                }
            }
        }

        var cycle = FindCycle(edges);
        Assert.True(cycle is null, $"{project}: namespace cycle {string.Join(" -> ", cycle ?? [])}");
    }

    private static List<string>? FindCycle(Dictionary<string, HashSet<string>> edges)
    {
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1: on the path, 2: done
        var path = new List<string>();
        List<string>? Visit(string node)
        {
            state[node] = 1;
            path.Add(node);
            foreach (var next in edges.GetValueOrDefault(node) ?? [])
            {
                if (state.GetValueOrDefault(next) == 1)
                {
                    return [.. path[path.IndexOf(next)..], next];
                }

                if (state.GetValueOrDefault(next) == 0 && Visit(next) is { } found)
                {
                    return found;
                }
            }

            path.RemoveAt(path.Count - 1);
            state[node] = 2;
            return null;
        }

        foreach (var node in edges.Keys.Order(StringComparer.Ordinal))
        {
            if (state.GetValueOrDefault(node) == 0 && Visit(node) is { } cycle)
            {
                return cycle;
            }
        }

        return null;
    }
}
