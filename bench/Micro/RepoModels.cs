using Pipeline.Inference.Onnx;
using Pipeline.Benchmarks;

namespace Pipeline.Benchmarks.Micro;

/// <summary>Finds the models the micro-benchmarks run: stories260K from the repository, or a synthetic shape.</summary>
internal static class RepoModels
{
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Pipeline.sln"))) return dir.FullName;
            throw new DirectoryNotFoundException($"no Pipeline.sln above {AppContext.BaseDirectory}");
        }
    }

    public static string Stories260K => Path.Combine(Root, "models", "stories260k");

    /// <summary>"260k" or a synthetic shape name ("110m"), written and converted on first use.</summary>
    public static string Directory(string name) => name == "260k"
        ? Stories260K
        : SyntheticModelWriter.GetOrWrite(SyntheticShape.Parse(name), 42, Path.Combine(Path.GetDirectoryName(OnnxModelCache.DefaultDirectory)!, "synthetic"));
}
