namespace Pipeline.Inference.Runtime;

/// <summary>How the ONNX Runtime session is made.</summary>
internal sealed record RunnerOptions
{
    /// <summary>ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose.</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>Ask for the CUDA execution provider; falls back to CPU with a stated reason.</summary>
    public bool UseCuda { get; init; }
}
