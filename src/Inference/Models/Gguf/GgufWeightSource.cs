namespace Pipeline.Inference.Models.Gguf;

/// <summary>
/// The decoder weights of a GGUF file (architectures <c>llama</c>, and <c>qwen2</c>/<c>qwen3</c>),
/// dequantized to float32 one tensor at a time from the memory-mapped file. llama.cpp's converter
/// stores llama q/k rows already in interleaved RoPE order (it permutes Hugging Face's), so they are
/// used as stored; qwen2/qwen3 keep Hugging Face's rotate-half order (llama.cpp runs them with NEOX
/// RoPE) and are permuted like a Hugging Face folder.
/// </summary>
internal sealed class GgufWeightSource : IWeightSource
{
    private readonly GgufFile _file;
    private readonly bool _ownsFile;
    private readonly bool _rotateHalf;

    private GgufWeightSource(GgufFile file, bool ownsFile, LlamaConfig config, int maxContext)
    {
        _file = file;
        _ownsFile = ownsFile;
        Config = config;
        MaxContext = maxContext;
        _rotateHalf = config.Architecture is "qwen2" or "qwen3";
    }

    public LlamaConfig Config { get; }

    /// <summary>The model's own context limit (<c>{arch}.context_length</c>) before any cap.</summary>
    public int MaxContext { get; }

    public GgufFile File => _file;

    public static GgufWeightSource Open(string path, int? maxContext = null)
    {
        var file = GgufFile.Open(path);
        try { return Create(file, ownsFile: true, maxContext); }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Reads the configuration from <paramref name="file"/>'s metadata; the source does not dispose a file it does not own.</summary>
    public static GgufWeightSource Create(GgufFile file, bool ownsFile, int? maxContext = null)
    {
        ArgumentNullException.ThrowIfNull(file);
        var (config, context) = ReadConfig(file);
        return new GgufWeightSource(file, ownsFile, config.WithContextCap(maxContext), context);
    }

    /// <summary>The <see cref="LlamaConfig"/> the metadata describes, and the model's context length.</summary>
    public static (LlamaConfig Config, int Context) ReadConfig(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        string arch = file.Architecture ?? throw new InvalidDataException($"GGUF file '{file.Path}' has no general.architecture");
        if (arch is not ("llama" or "qwen2" or "qwen3"))
            throw new InvalidDataException($"GGUF file '{file.Path}': architecture '{arch}' is not supported (llama, qwen2, qwen3)");
        int Int(string key) => file.GetValue($"{arch}.{key}").AsInt32();
        int? OptionalInt(string key) => file.TryGetValue($"{arch}.{key}", out var v) ? v.AsInt32() : null;
        float? OptionalFloat(string key) => file.TryGetValue($"{arch}.{key}", out var v) ? v.AsSingle() : null;

        int dim = Int("embedding_length");
        int heads = Int("attention.head_count");
        int kvHeads = OptionalInt("attention.head_count_kv") ?? heads;
        int context = Int("context_length");
        var embedding = file.GetTensor("token_embd.weight");
        if (embedding.Dimensions.Count != 2 || embedding.Dimensions[0] != dim)
            throw new InvalidDataException($"GGUF file '{file.Path}': token_embd.weight has dimensions [{string.Join(", ", embedding.Dimensions)}], expected [{dim}, vocab]");
        int vocab = OptionalInt("vocab_size") ?? checked((int)embedding.Dimensions[1]);
        int headDim = OptionalInt("attention.key_length") ?? OptionalInt("rope.dimension_count") ?? dim / heads;
        if (OptionalInt("rope.dimension_count") is int ropeDims && ropeDims != headDim)
            throw new InvalidDataException($"GGUF file '{file.Path}': partial rotary embeddings ({arch}.rope.dimension_count {ropeDims} of head size {headDim}) are not supported");

        RopeScaling? scaling = null;
        if (file.TryGetValue($"{arch}.rope.scaling.type", out var type) && type.AsString() is { } kind && kind != "none")
        {
            if (kind != RopeScaling.Linear)
                throw new InvalidDataException($"GGUF file '{file.Path}': rope scaling '{kind}' is not supported (linear; llama3 scaling comes as rope_freqs.weight)");
            scaling = new RopeScaling(RopeScaling.Linear, OptionalFloat("rope.scaling.factor") ?? throw new InvalidDataException($"GGUF file '{file.Path}': {arch}.rope.scaling.factor is missing"));
        }
        else if (OptionalFloat("rope.scale_linear") is float linear && linear != 1f)
        {
            scaling = new RopeScaling(RopeScaling.Linear, linear);
        }

        var config = new LlamaConfig(dim, Int("feed_forward_length"), Int("block_count"), heads, kvHeads, vocab, context,
            SharedClassifier: file.FindTensor("output.weight") is null)
        {
            Architecture = arch,
            RopeTheta = OptionalFloat("rope.freq_base") ?? LlamaConfig.DefaultRopeTheta,
            RmsNormEpsilon = OptionalFloat("attention.layer_norm_rms_epsilon") ?? LlamaConfig.DefaultRmsNormEpsilon,
            RopeScaling = scaling,
            AttentionBias = file.FindTensor("blk.0.attn_q.bias") is not null,
            QkNorm = file.FindTensor("blk.0.attn_q_norm.weight") is not null,
            ExplicitHeadDim = headDim != dim / heads ? headDim : 0,
        };
        try { config.Validate(); }
        catch (InvalidDataException e) { throw new InvalidDataException($"GGUF file '{file.Path}': {e.Message}", e); }
        return (config, context);
    }

    public bool Has(WeightRole role) => role switch
    {
        WeightRole.RopeFrequencyFactors => _file.FindTensor("rope_freqs.weight") is not null,
        WeightRole.QBias or WeightRole.KBias or WeightRole.VBias => Config.AttentionBias,
        WeightRole.QNorm or WeightRole.KNorm => Config.QkNorm,
        _ => true,
    };

    public float[] Read(WeightRole role, int layer)
    {
        var c = Config;
        string B(string n) => $"blk.{layer}.{n}";
        int hd = c.HeadDim;
        float[] Rope(float[] data, int rows, long rowLength) => _rotateHalf ? RopeLayout.RotateHalfToInterleaved(data, rows, rowLength, hd) : data;
        return role switch
        {
            WeightRole.TokenEmbedding => Tensor("token_embd.weight", c.VocabSize, c.Dim),
            WeightRole.AttentionNorm => Tensor(B("attn_norm.weight"), c.Dim),
            WeightRole.Wq => Rope(Tensor(B("attn_q.weight"), c.QDim, c.Dim), c.QDim, c.Dim),
            WeightRole.Wk => Rope(Tensor(B("attn_k.weight"), c.KvDim, c.Dim), c.KvDim, c.Dim),
            WeightRole.Wv => Tensor(B("attn_v.weight"), c.KvDim, c.Dim),
            WeightRole.Wo => Tensor(B("attn_output.weight"), c.Dim, c.QDim),
            WeightRole.QBias => Rope(Tensor(B("attn_q.bias"), c.QDim), c.QDim, 1),
            WeightRole.KBias => Rope(Tensor(B("attn_k.bias"), c.KvDim), c.KvDim, 1),
            WeightRole.VBias => Tensor(B("attn_v.bias"), c.KvDim),
            WeightRole.QNorm => Rope(Tensor(B("attn_q_norm.weight"), hd), hd, 1),
            WeightRole.KNorm => Rope(Tensor(B("attn_k_norm.weight"), hd), hd, 1),
            WeightRole.FfnNorm => Tensor(B("ffn_norm.weight"), c.Dim),
            WeightRole.W1 => Tensor(B("ffn_gate.weight"), c.HiddenDim, c.Dim),
            WeightRole.W2 => Tensor(B("ffn_down.weight"), c.Dim, c.HiddenDim),
            WeightRole.W3 => Tensor(B("ffn_up.weight"), c.HiddenDim, c.Dim),
            WeightRole.FinalNorm => Tensor("output_norm.weight", c.Dim),
            WeightRole.Classifier => Tensor(c.SharedClassifier ? "token_embd.weight" : "output.weight", c.VocabSize, c.Dim),
            WeightRole.RopeFrequencyFactors => Tensor("rope_freqs.weight", hd / 2),
            _ => throw new InvalidDataException($"GGUF file '{_file.Path}' has no {role} tensor"),
        };
    }

    /// <summary>Tensor <paramref name="name"/> dequantized, after checking its shape (given PyTorch-style, outermost first).</summary>
    private float[] Tensor(string name, params long[] shape)
    {
        var t = _file.GetTensor(name);
        var expected = shape.Reverse().ToArray(); // ggml order: the contiguous extent first
        if (!t.Dimensions.SequenceEqual(expected))
            throw new InvalidDataException($"GGUF file '{_file.Path}': tensor '{name}' has dimensions [{string.Join(", ", t.Dimensions)}], expected [{string.Join(", ", expected)}]");
        if (!GgmlDequantizer.Supports(t.Type))
            throw new InvalidDataException($"GGUF file '{_file.Path}': tensor '{name}' has type {t.Type}; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K");
        if (!GgmlTypeSizes.TryGet(t.TypeId, out int blockElements, out int blockBytes) || t.ElementCount % blockElements != 0 || shape[^1] % blockElements != 0)
            throw new InvalidDataException($"GGUF file '{_file.Path}': tensor '{name}' rows of {shape[^1]} are not whole {t.Type} blocks");
        var result = new float[t.ElementCount];
        // Whole rows at a time, so no span exceeds 2 GB whatever the tensor's size.
        long rowBytes = shape[^1] / blockElements * blockBytes;
        int rowsPerChunk = (int)Math.Max(1, (64L << 20) / rowBytes);
        long rows = t.ElementCount / shape[^1];
        for (long r = 0; r < rows; r += rowsPerChunk)
        {
            int count = (int)Math.Min(rowsPerChunk, rows - r);
            var bytes = _file.GetTensorBytes(t, r * rowBytes, checked((int)(count * rowBytes)));
            GgmlDequantizer.Dequantize(t.Type, bytes, result.AsSpan(checked((int)(r * shape[^1])), checked((int)(count * shape[^1]))));
        }
        return result;
    }

    /// <summary>Distinct tensor types of the file, e.g. ["F32", "Q8_0"].</summary>
    public IReadOnlyList<string> DTypes => _file.Tensors.Select(t => t.IsKnownType ? t.Type.ToString() : $"type {t.TypeId}").Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();

    public void Dispose()
    {
        if (_ownsFile) _file.Dispose();
    }
}
