namespace Pipeline.Inference.Models;

/// <summary>The shape of a Llama-architecture decoder, as a llama2.c checkpoint header states it.</summary>
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
    public int HeadDim => Dim / Heads;
    public int KvDim => KvHeads * HeadDim;
    public int QueriesPerKvHead => Heads / KvHeads;

    public const float RmsNormEpsilon = 1e-5f;
    public const float RopeTheta = 10000f;

    /// <summary>Parameters counted as llama2.c stores them (classifier counted once when shared).</summary>
    public long ParameterCount =>
        (long)VocabSize * Dim
        + (long)Layers * (2L * Dim + (long)Dim * Dim * 2 + 2L * Dim * KvDim + 3L * Dim * HiddenDim)
        + Dim
        + (SharedClassifier ? 0 : (long)VocabSize * Dim);

    /// <summary>Throws when the numbers cannot describe a working model.</summary>
    public void Validate()
    {
        if (Dim <= 0 || HiddenDim <= 0 || Layers <= 0 || Heads <= 0 || KvHeads <= 0 || VocabSize <= 0 || SeqLen <= 0)
            throw new InvalidDataException($"checkpoint header has a non-positive size: {this}");
        if (Dim % Heads != 0)
            throw new InvalidDataException($"dim {Dim} is not a multiple of n_heads {Heads}");
        if (Heads % KvHeads != 0)
            throw new InvalidDataException($"n_heads {Heads} is not a multiple of n_kv_heads {KvHeads}");
        if (HeadDim % 2 != 0)
            throw new InvalidDataException($"head size {HeadDim} must be even for rotary embeddings");
    }
}
