using Pipeline.Inference.Models.Sources;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Properties;

/// <summary>
/// A Hugging Face-layout model for the batching properties: a Qwen2ForCausalLM folder (q/k/v
/// biases, q/k in rotate-half order, 8 heads over 4 KV heads, theta 1e6) with random weights and
/// the embedded llama2.c tokenizer (512 pieces), written once per test run and converted through
/// the real loader.
/// </summary>
internal static class HuggingFaceLayoutModel
{
    private static readonly Lazy<string> Folder = new(Write);
    private static readonly Lazy<string> OnnxPath = new(() => OnnxModelCache.GetOrConvert(ModelSource.Detect(Folder.Value), null, Path.Combine(Folder.Value, "cache")));
    private static readonly Lazy<DecoderModel> OneThread = new(() => DecoderModel.Load(OnnxPath.Value, new RunnerOptions { IntraOpThreads = 1 }));
    private static readonly Lazy<DecoderModel> TwoThreads = new(() => DecoderModel.Load(OnnxPath.Value, new RunnerOptions { IntraOpThreads = 2 }));
    private static readonly Lazy<LoadedModel> LoadedOne = new(() => LoadedModel.Load(Folder.Value, new RunnerOptions { IntraOpThreads = 1 }, Path.Combine(Folder.Value, "cache")));
    private static readonly Lazy<LoadedModel> LoadedTwo = new(() => LoadedModel.Load(Folder.Value, new RunnerOptions { IntraOpThreads = 2 }, Path.Combine(Folder.Value, "cache")));

    public static DecoderModel WithThreads(int threads) => threads <= 1 ? OneThread.Value : TwoThreads.Value;

    public static LoadedModel Loaded(int threads) => threads <= 1 ? LoadedOne.Value : LoadedTwo.Value;

    private static string Write()
    {
        var spec = new TinySpec
        {
            Architecture = "Qwen2ForCausalLM", Dim = 64, Hidden = 128, Layers = 3, Heads = 8, KvHeads = 4,
            Vocab = 512, MaxPositions = 512, RopeTheta = 1_000_000f, Eps = 1e-6f, WeightScale = 0.1f, Seed = 21,
        };
        var folder = Path.Combine(Path.GetTempPath(), $"pipeline-properties-qwen2-{Environment.ProcessId}");
        // Removed when the test process ends (open sessions do not hold a Linux file).
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(folder, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        };
        TinyModelFiles.WriteHuggingFace(new TinyModel(spec), folder, "BF16", shards: 2);
        File.Copy(Path.Combine(RepoPaths.ModelDir, "tok512.bin"), Path.Combine(folder, "tokenizer.bin"), overwrite: true);
        return folder;
    }
}
