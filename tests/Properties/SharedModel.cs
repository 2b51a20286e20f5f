using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Properties;

/// <summary>The embedded model, converted once and loaded once per intra-op thread count for the whole test run.</summary>
internal static class SharedModel
{
    private static readonly Lazy<string> OnnxPath = new(() => OnnxModelCache.GetOrConvert(Path.Combine(RepoPaths.ModelDir, "stories260K.bin")));
    private static readonly Lazy<DecoderModel> OneThread = new(() => DecoderModel.Load(OnnxPath.Value, new RunnerOptions { IntraOpThreads = 1 }));
    private static readonly Lazy<DecoderModel> TwoThreads = new(() => DecoderModel.Load(OnnxPath.Value, new RunnerOptions { IntraOpThreads = 2 }));

    public static string Path_ => OnnxPath.Value;
    public static DecoderModel WithThreads(int threads) => threads <= 1 ? OneThread.Value : TwoThreads.Value;
}
