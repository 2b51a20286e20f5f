namespace Pipeline.Testing;

/// <summary>Finds the repository's files from the test binaries, wherever the clone lives.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> RootLazy = new(FindRoot);

    /// <summary>The folder holding Pipeline.sln, found by walking up from the test binaries.</summary>
    public static string Root => RootLazy.Value;

    public static string ModelDir => Path.Combine(Root, "models", "stories260k");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Pipeline.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"no Pipeline.sln above {AppContext.BaseDirectory}");
    }
}
