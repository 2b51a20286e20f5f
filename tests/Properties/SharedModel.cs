using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Properties;

/// <summary>The embedded model, converted once and loaded once per intra-op thread count for the whole test run.</summary>
internal static class SharedModel
{
    private static readonly Lazy<string> OnnxPath = new(() => OnnxModelCache.GetOrConvert(Path.Combine(RepoPaths.ModelDir, "stories260K.bin")));
    private static readonly Lazy<DecoderModel> OneThread = new(() => DecoderModel.Load(OnnxPath.Value, new RunnerOptions { IntraOpThreads = 1 }));
    private static readonly Lazy<DecoderModel> TwoThreads = new(() => DecoderModel.Load(OnnxPath.Value, new RunnerOptions { IntraOpThreads = 2 }));

    private static readonly Lazy<string> Q8Path = new(() => Convert(WeightQuantization.Q8));
    private static readonly Lazy<string> Q4Path = new(() => Convert(WeightQuantization.Q4));
    private static readonly Lazy<DecoderModel> Q8One = new(() => DecoderModel.Load(Q8Path.Value, new RunnerOptions { IntraOpThreads = 1 }));
    private static readonly Lazy<DecoderModel> Q8Two = new(() => DecoderModel.Load(Q8Path.Value, new RunnerOptions { IntraOpThreads = 2 }));
    private static readonly Lazy<DecoderModel> Q4One = new(() => DecoderModel.Load(Q4Path.Value, new RunnerOptions { IntraOpThreads = 1 }));
    private static readonly Lazy<DecoderModel> Q4Two = new(() => DecoderModel.Load(Q4Path.Value, new RunnerOptions { IntraOpThreads = 2 }));

    private static string Convert(WeightQuantization quantization) =>
        OnnxModelCache.GetOrConvert(Pipeline.Inference.Models.Sources.ModelSource.Detect(Path.Combine(RepoPaths.ModelDir, "stories260K.bin")), null, quantization);

    public static string Path_ => OnnxPath.Value;

    /// <summary>The embedded model with weight-only quantization (MatMulNBits, blocks of 32).</summary>
    public static DecoderModel Quantized(WeightQuantization quantization, int threads) => quantization switch
    {
        WeightQuantization.Q8 => threads <= 1 ? Q8One.Value : Q8Two.Value,
        WeightQuantization.Q4 => threads <= 1 ? Q4One.Value : Q4Two.Value,
        _ => WithThreads(threads),
    };
    public static DecoderModel WithThreads(int threads) => threads <= 1 ? OneThread.Value : TwoThreads.Value;
}
