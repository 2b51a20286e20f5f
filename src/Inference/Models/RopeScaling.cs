namespace Pipeline.Inference.Models;

/// <summary>
/// A RoPE frequency scaling, as Hugging Face <c>rope_scaling</c> states it: <c>linear</c> divides
/// every frequency by <see cref="Factor"/>; <c>llama3</c> (Llama 3.1/3.2) divides low frequencies
/// by <see cref="Factor"/>, keeps high ones and blends between. The precomputed RoPE tables
/// apply it, so the graph itself is the same for every kind.
/// </summary>
public sealed record RopeScaling(
    string Type,
    float Factor,
    float LowFreqFactor = 1f,
    float HighFreqFactor = 4f,
    int OriginalMaxPositionEmbeddings = 8192)
{
    public const string Linear = "linear";
    public const string Llama3 = "llama3";

    internal void Validate()
    {
        if (Type is not (Linear or Llama3))
            throw new InvalidDataException($"rope_scaling type '{Type}' is not supported (linear, llama3)");
        if (!(Factor > 0) || !float.IsFinite(Factor))
            throw new InvalidDataException($"rope_scaling factor {Factor} must be a positive number");
        if (Type == Llama3 && (!(HighFreqFactor > LowFreqFactor) || !(LowFreqFactor > 0) || OriginalMaxPositionEmbeddings <= 0))
            throw new InvalidDataException($"rope_scaling llama3 needs 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0: {this}");
    }

    /// <summary>
    /// Scales RoPE inverse frequencies in place, as transformers' <c>_compute_linear_scaling_rope_parameters</c>
    /// and <c>_compute_llama3_parameters</c> do; <paramref name="inverseFrequencies"/> is [head_dim / 2].
    /// </summary>
    internal void Apply(Span<float> inverseFrequencies)
    {
        if (Type == Linear)
        {
            for (int i = 0; i < inverseFrequencies.Length; i++) inverseFrequencies[i] /= Factor;
            return;
        }
        float lowFreqWavelen = OriginalMaxPositionEmbeddings / LowFreqFactor;
        float highFreqWavelen = OriginalMaxPositionEmbeddings / HighFreqFactor;
        for (int i = 0; i < inverseFrequencies.Length; i++)
        {
            float f = inverseFrequencies[i];
            float wavelen = 2 * MathF.PI / f;
            if (wavelen > lowFreqWavelen) inverseFrequencies[i] = f / Factor;
            else if (wavelen >= highFreqWavelen)
            {
                float smooth = (OriginalMaxPositionEmbeddings / wavelen - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
                inverseFrequencies[i] = (1 - smooth) * f / Factor + smooth * f;
            }
        }
    }
}
