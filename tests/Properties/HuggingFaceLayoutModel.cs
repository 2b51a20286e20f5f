using Pipeline.Inference.Models.Sources;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Properties;

/// <summary>
/// Hugging Face-layout models for the batching properties: random-weight folders of each supported
/// architecture (q/k in rotate-half order, GQA, BF16 shards) with the embedded llama2.c tokenizer
/// (512 pieces), each written once per test run and converted through the real loader.
/// </summary>
internal sealed class HuggingFaceLayoutModel
{
    /// <summary>Qwen2: q/k/v biases, 8 heads over 4 KV heads, theta 1e6.</summary>
    public static readonly HuggingFaceLayoutModel Qwen2 = new(new TinySpec
    {
        Architecture = "Qwen2ForCausalLM", Dim = 64, Hidden = 128, Layers = 3, Heads = 8, KvHeads = 4,
        Vocab = 512, MaxPositions = 512, RopeTheta = 1_000_000f, Eps = 1e-6f, WeightScale = 0.1f, Seed = 21,
    });

    /// <summary>Qwen3: per-head q/k RMSNorm, head_dim given explicitly (16, not dim / heads), 2 KV heads.</summary>
    public static readonly HuggingFaceLayoutModel Qwen3 = new(new TinySpec
    {
        Architecture = "Qwen3ForCausalLM", Dim = 64, Hidden = 96, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 16,
        Vocab = 512, MaxPositions = 512, RopeTheta = 1_000_000f, Eps = 1e-6f, WeightScale = 0.1f, Seed = 22,
    });

    /// <summary>Llama 3.2 style: llama3 rope scaling, untied classifier, theta 5e5.</summary>
    public static readonly HuggingFaceLayoutModel Llama3 = new(new TinySpec
    {
        Architecture = "LlamaForCausalLM", Dim = 64, Hidden = 128, Layers = 2, Heads = 8, KvHeads = 2,
        Vocab = 512, MaxPositions = 512, RopeTheta = 500_000f, WeightScale = 0.1f, Seed = 23,
        RopeScalingJson = "{\"rope_type\": \"llama3\", \"factor\": 32.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 64}",
    });

    /// <summary>Llama with heads of 16: one packed q/k/v product that the attention rotates itself, the graph of the 15M and 110M shapes.</summary>
    public static readonly HuggingFaceLayoutModel WideHeads = new(new TinySpec
    {
        Architecture = "LlamaForCausalLM", Dim = 64, Hidden = 128, Layers = 2, Heads = 4, KvHeads = 2,
        Vocab = 512, MaxPositions = 512, RopeTheta = 10_000f, WeightScale = 0.1f, Seed = 24,
    });

    private readonly Lazy<string> _folder;
    private readonly Lazy<DecoderModel> _oneThread;
    private readonly Lazy<DecoderModel> _twoThreads;
    private readonly Lazy<LoadedModel> _loadedOne;
    private readonly Lazy<LoadedModel> _loadedTwo;

    private HuggingFaceLayoutModel(TinySpec spec)
    {
        _folder = new(() => Write(spec));
        var onnx = new Lazy<string>(() => OnnxModelCache.GetOrConvert(ModelSource.Detect(_folder.Value), null, Path.Combine(_folder.Value, "cache")));
        _oneThread = new(() => DecoderModel.Load(onnx.Value, new RunnerOptions { IntraOpThreads = 1 }));
        _twoThreads = new(() => DecoderModel.Load(onnx.Value, new RunnerOptions { IntraOpThreads = 2 }));
        _loadedOne = new(() => LoadedModel.Load(_folder.Value, new RunnerOptions { IntraOpThreads = 1 }, Path.Combine(_folder.Value, "cache")));
        _loadedTwo = new(() => LoadedModel.Load(_folder.Value, new RunnerOptions { IntraOpThreads = 2 }, Path.Combine(_folder.Value, "cache")));
    }

    public DecoderModel WithThreads(int threads) => threads <= 1 ? _oneThread.Value : _twoThreads.Value;

    public LoadedModel Loaded(int threads) => threads <= 1 ? _loadedOne.Value : _loadedTwo.Value;

    private static string Write(TinySpec spec)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"pipeline-properties-{spec.Architecture}-{Environment.ProcessId}");
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
