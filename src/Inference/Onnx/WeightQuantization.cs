namespace Pipeline.Inference.Onnx;

/// <summary>
/// How the converter stores the projection and classifier weights (<c>--quantize</c>). The token
/// embedding and the norms stay float32 whatever is chosen.
/// </summary>
public enum WeightQuantization
{
    /// <summary>Float32 weights and ONNX MatMul.</summary>
    None,

    /// <summary>8-bit weights, one float scale per 32 weights (as ggml's Q8_0), run by ONNX Runtime's com.microsoft MatMulNBits.</summary>
    Q8,

    /// <summary>
    /// Weights rounded to a 4-bit grid, one float scale per 32 weights (ggml's Q4_0 rounding), stored
    /// one per byte and run by the same 8-bit kernel as <see cref="Q8"/>: ONNX Runtime's 4-bit kernels
    /// are not batch-invariant on this CPU, so this gives Q4_0's accuracy, not its size or speed.
    /// </summary>
    Q4,

    /// <summary>
    /// Float16 weights, and the activations cast to float16 on their way into each projection
    /// (<c>--quantize f16</c>; for CUDA's tensor cores): cuBLAS accumulates in float32 and the result
    /// is cast back to float32, so norms, attention, the residual stream and the KV caches stay float32.
    /// </summary>
    F16,
}
