namespace Pipeline.Inference.Onnx;

/// <summary>How the runner's graph computes attention.</summary>
public enum AttentionKernel
{
    /// <summary>
    /// Standard ONNX operators over key blocks of <see cref="LlamaOnnxExporter.AttentionBlock"/>
    /// positions, read in place from a padded past: ~50 nodes per layer, batch-invariant on the
    /// CPU and on CUDA (with fixed shapes). Every exported (Optimum-layout) graph uses it.
    /// </summary>
    Blocks,

    /// <summary>
    /// ONNX Runtime's CPU <c>com.microsoft.GroupQueryAttention</c>: one node per layer that
    /// attends each row over its own length (<c>seqlens_k</c>) and writes the new keys and values
    /// into the staged past in place. A step of a small model is mostly per-node dispatch, so this
    /// is where the CPU's time goes. Needs a head size that is a multiple of 8; batched calls must
    /// feed one token per row or start every row's prompt (the kernel's own rule).
    /// </summary>
    GroupQuery,
}
