namespace Pipeline.Inference.Runtime;

/// <summary>How a model is loaded and its ONNX Runtime session made.</summary>
internal sealed record RunnerOptions
{
    /// <summary>ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose.</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>Ask for the CUDA execution provider; falls back to CPU with a stated reason.</summary>
    public bool UseCuda { get; init; }

    /// <summary>
    /// Caps the context (KV positions per sequence) at min(model's maximum, this): it bounds KV
    /// memory and the RoPE tables of models with 32K–128K positions. Null keeps the model's.
    /// Part of the converted graph's cache key. (<c>--context N</c>.)
    /// </summary>
    public int? MaxContext { get; init; }
}
