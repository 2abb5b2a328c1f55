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
        ["KtZeroTrust.Monitoring"] = ["KtZeroTrust.Core", "KtZeroTrust.Redis"],
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

    public static TheoryData<string> Projects() => [.. Directory.GetDirectories(Path.Combine(RepositoryPaths.Root, "src")).Select(Path.GetFileName).OfType<string>().Order()];

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
}
