namespace Pipeline.Inference.Models;

/// <summary>Another source's weights with the context set to <paramref name="context"/> positions (only the RoPE tables depend on it).</summary>
internal sealed class ContextOverrideSource(IWeightSource inner, int context) : IWeightSource
{
    public LlamaConfig Config { get; } = context > 0
        ? inner.Config with { SeqLen = context }
        : throw new ArgumentOutOfRangeException(nameof(context), context, "context must be positive");

    public bool Has(WeightRole role) => inner.Has(role);

    public float[] Read(WeightRole role, int layer) => inner.Read(role, layer);

    /// <summary>The inner source belongs to whoever opened it.</summary>
    public void Dispose() { }
}
