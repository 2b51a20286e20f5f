using Pipeline.Inference.Runtime;

namespace Pipeline.Integration;

/// <summary>The embedded model, loaded once for the whole test run and shared by every host (it is immutable).</summary>
internal static class SharedModel
{
    private static readonly Lazy<LoadedModel> Model = new(() => LoadedModel.Load(RepoPaths.ModelDir));
    public static LoadedModel Instance => Model.Value;
}
