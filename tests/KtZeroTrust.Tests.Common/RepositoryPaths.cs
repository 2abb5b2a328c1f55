namespace KtZeroTrust.Tests.Common;

/// <summary>Where the repository is, found from the test binaries (the folder holding KtZeroTrust.sln).</summary>
public static class RepositoryPaths
{
    public static string Root { get; } = Find();

    public static string ServerDll => Path.Combine(Root, "src", "KtZeroTrust.Server", "bin", "Release", "net10.0", "KtZeroTrust.Server.dll");

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "KtZeroTrust.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("KtZeroTrust.sln not found above the test binaries.");
    }
}
