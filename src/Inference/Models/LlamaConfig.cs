namespace Pipeline.Inference.Models;

/// <summary>
/// The shape and numerics of a Llama-family decoder (Llama, Mistral, Qwen2, Qwen3), whatever file
/// it came from. The positional part is what a llama2.c checkpoint header states; the init-only
/// members carry what Hugging Face <c>config.json</c> or GGUF metadata add, with llama2.c's
/// values as defaults (so a llama2.c model compares equal to a header-only config).
/// </summary>
/// <param name="SeqLen">The context the graph is built for: the model's maximum, or less when capped.</param>
public sealed record LlamaConfig(
    int Dim,
    int HiddenDim,
    int Layers,
    int Heads,
    int KvHeads,
    int VocabSize,
    int SeqLen,
    bool SharedClassifier)
{
    public const float DefaultRmsNormEpsilon = 1e-5f;
    public const float DefaultRopeTheta = 10000f;

    /// <summary>"llama", "mistral", "qwen2" or "qwen3": what the weights were trained as (informational; the flags below decide the graph).</summary>
    public string Architecture { get; init; } = "llama";

    /// <summary>RoPE base frequency (rope_theta, llama.rope.freq_base).</summary>
    public float RopeTheta { get; init; } = DefaultRopeTheta;

    public float RmsNormEpsilon { get; init; } = DefaultRmsNormEpsilon;

    /// <summary>How the RoPE frequencies are stretched for long contexts, or null for none.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>The q, k and v projections carry biases (Qwen2).</summary>
    public bool AttentionBias { get; init; }

    /// <summary>Queries and keys are RMS-normalised per head, with a [head_dim] weight each, before RoPE (Qwen3).</summary>
    public bool QkNorm { get; init; }

    /// <summary>head_dim when the model states it (Qwen3: not dim / heads); 0 means dim / heads.</summary>
    public int ExplicitHeadDim { get; init; }

    public int HeadDim => ExplicitHeadDim > 0 ? ExplicitHeadDim : Dim / Heads;
    public int KvDim => KvHeads * HeadDim;

    /// <summary>Width of the concatenated query heads: dim unless head_dim is stated otherwise.</summary>
    public int QDim => Heads * HeadDim;
    public int QueriesPerKvHead => Heads / KvHeads;

    /// <summary>Parameters as stored (classifier counted once when shared).</summary>
    public long ParameterCount =>
        (long)VocabSize * Dim
        + (long)Layers * (2L * Dim + 2L * Dim * QDim + 2L * Dim * KvDim + 3L * Dim * HiddenDim
                          + (AttentionBias ? QDim + 2L * KvDim : 0) + (QkNorm ? 2L * HeadDim : 0))
        + Dim
        + (SharedClassifier ? 0 : (long)VocabSize * Dim);

    /// <summary>Throws when the numbers cannot describe a working model.</summary>
    public void Validate()
    {
        if (Dim <= 0 || HiddenDim <= 0 || Layers <= 0 || Heads <= 0 || KvHeads <= 0 || VocabSize <= 0 || SeqLen <= 0)
            throw new InvalidDataException($"model configuration has a non-positive size: {this}");
        if (ExplicitHeadDim < 0)
            throw new InvalidDataException($"head_dim {ExplicitHeadDim} is negative");
        if (ExplicitHeadDim == 0 && Dim % Heads != 0)
            throw new InvalidDataException($"dim {Dim} is not a multiple of n_heads {Heads}");
        if (Heads % KvHeads != 0)
            throw new InvalidDataException($"n_heads {Heads} is not a multiple of n_kv_heads {KvHeads}");
        if (HeadDim % 2 != 0)
            throw new InvalidDataException($"head size {HeadDim} must be even for rotary embeddings");
        if (!(RopeTheta > 0) || !float.IsFinite(RopeTheta))
            throw new InvalidDataException($"rope theta {RopeTheta} must be a positive number");
        if (!(RmsNormEpsilon >= 0) || !float.IsFinite(RmsNormEpsilon))
            throw new InvalidDataException($"rms norm epsilon {RmsNormEpsilon} must be a non-negative number");
        RopeScaling?.Validate();
    }

    /// <summary>This configuration with its context capped at <paramref name="maxContext"/> positions (null or larger: unchanged).</summary>
    public LlamaConfig WithContextCap(int? maxContext) =>
        maxContext is { } cap && cap < SeqLen
            ? cap > 0 ? this with { SeqLen = cap } : throw new ArgumentOutOfRangeException(nameof(maxContext), cap, "context cap must be positive")
            : this;
}
