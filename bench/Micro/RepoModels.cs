using Pipeline.Benchmarks;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Benchmarks.Micro;

/// <summary>Finds the models the micro-benchmarks run: the embedded stories260K, or a synthetic shape.</summary>
internal static class RepoModels
{
    /// <summary>stories260K as copied beside every build that references the library.</summary>
    public static string Stories260K => LoadedModel.EmbeddedModelDirectory;

    /// <summary>"260k" or a synthetic shape name ("110m"), written and converted on first use.</summary>
    public static string Directory(string name) => name == "260k"
        ? Stories260K
        : SyntheticModelWriter.GetOrWrite(SyntheticShape.Parse(name), 42, Path.Combine(Path.GetDirectoryName(OnnxModelCache.DefaultDirectory)!, "synthetic"));
}
