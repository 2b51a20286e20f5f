namespace Pipeline.Inference.Models;

/// <summary>Weights already in memory (a llama2.c checkpoint, a synthetic model) as a <see cref="IWeightSource"/>: per-layer slices of the stacked arrays.</summary>
internal sealed class LlamaWeightsSource(LlamaWeights weights) : IWeightSource
{
    public LlamaConfig Config => weights.Config;

    public bool Has(WeightRole role) => role is not (WeightRole.RopeFrequencyFactors or WeightRole.QBias or WeightRole.KBias or WeightRole.VBias or WeightRole.QNorm or WeightRole.KNorm);

    public float[] Read(WeightRole role, int layer)
    {
        var c = weights.Config;
        return role switch
        {
            WeightRole.TokenEmbedding => (float[])weights.TokenEmbedding.Clone(),
            WeightRole.AttentionNorm => Layer(weights.RmsAttention, layer, c.Dim),
            WeightRole.Wq => Layer(weights.Wq, layer, (long)c.QDim * c.Dim),
            WeightRole.Wk => Layer(weights.Wk, layer, (long)c.KvDim * c.Dim),
            WeightRole.Wv => Layer(weights.Wv, layer, (long)c.KvDim * c.Dim),
            WeightRole.Wo => Layer(weights.Wo, layer, (long)c.Dim * c.QDim),
            WeightRole.FfnNorm => Layer(weights.RmsFfn, layer, c.Dim),
            WeightRole.W1 => Layer(weights.W1, layer, (long)c.HiddenDim * c.Dim),
            WeightRole.W2 => Layer(weights.W2, layer, (long)c.Dim * c.HiddenDim),
            WeightRole.W3 => Layer(weights.W3, layer, (long)c.HiddenDim * c.Dim),
            WeightRole.FinalNorm => (float[])weights.RmsFinal.Clone(),
            WeightRole.Classifier => (float[])weights.Classifier.Clone(),
            _ => throw new InvalidDataException($"llama2.c weights have no {role} tensor"),
        };
    }

    private static float[] Layer(float[] stacked, int layer, long size) => stacked.AsSpan().Slice(checked((int)(layer * size)), checked((int)size)).ToArray();

    public void Dispose() { }
}
