namespace Pipeline.Inference.Models;

/// <summary>
/// A model's weights, handed out one tensor at a time in float32 and llama2.c's layout (see
/// <see cref="WeightRole"/>), so that a converter holds one tensor at a time, never the whole
/// model: file formats read (memory-mapped or positioned reads) and widen each tensor only when
/// asked. Implementations own their open files; dispose when the conversion is done.
/// </summary>
internal interface IWeightSource : IDisposable
{
    LlamaConfig Config { get; }

    /// <summary>
    /// The tensor <paramref name="role"/> of <paramref name="layer"/> (ignored for whole-model
    /// tensors) as a fresh float32 array the caller may modify.
    /// </summary>
    /// <exception cref="InvalidDataException">The tensor is missing or has the wrong shape.</exception>
    float[] Read(WeightRole role, int layer);

    /// <summary>Whether the source holds an optional tensor (<see cref="WeightRole.RopeFrequencyFactors"/>).</summary>
    bool Has(WeightRole role);
}
