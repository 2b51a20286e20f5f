namespace Pipeline.Integration;

/// <summary>Finds the repository's files from the test binaries, wherever the clone lives.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();
    public static string ModelDir => Path.Combine(Root, "models", "stories260k");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Pipeline.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("cannot find Pipeline.sln above " + AppContext.BaseDirectory);
    }
}
