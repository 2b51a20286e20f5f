using Pipeline.Inference.Onnx;

namespace Pipeline.Inference.Runtime;

/// <summary>How a model is loaded and its ONNX Runtime session made.</summary>
internal sealed record RunnerOptions
{
    /// <summary>
    /// ONNX Runtime intra-op threads; 0 (the default) picks by model size: two (or the cores there
    /// are, if fewer) below 256 MB of weights, every core above (see DecoderModel.IntraOpThreadsFor).
    /// </summary>
    public int IntraOpThreads { get; init; }

    /// <summary>
    /// Let ONNX Runtime's intra-op workers spin between parallel sections (<c>--spin on|off</c>).
    /// Null: on with more than one intra-op thread (DecoderModel.Spins). A sleeping worker takes tens
    /// of microseconds to wake, once per parallel node, and a small model's step is ~100 such nodes:
    /// two sleeping threads were slower than one (docs/PERFORMANCE.md, "Session 18" and "Session 22").
    /// </summary>
    public bool? IntraOpSpinning { get; init; }

    /// <summary>Ask for the CUDA execution provider; falls back to CPU with a stated reason.</summary>
    public bool UseCuda { get; init; }

    /// <summary>
    /// Caps the context (KV positions per sequence) at min(model's maximum, this): it bounds KV
    /// memory and the RoPE tables of models with 32K–128K positions. Null keeps the model's.
    /// Part of the converted graph's cache key. (<c>--context N</c>.)
    /// </summary>
    public int? MaxContext { get; init; }

    /// <summary>
    /// Weight-only quantization applied when the model is converted (<c>--quantize q8|q4</c>): weights
    /// on an 8- or 4-bit grid in blocks of 32 with a float scale each, run by ONNX Runtime's
    /// MatMulNBits. Part of the converted graph's cache key; ignored for a model that is already ONNX.
    /// </summary>
    public Pipeline.Inference.Onnx.WeightQuantization Quantize { get; init; }

    /// <summary>
    /// The shapes model calls are padded to (<c>--batch-shapes</c>); null picks by provider: exact on
    /// the CPU, <see cref="DecoderModel.CudaShapes"/> on CUDA (batch-invariant). <see cref="BatchShapes.Exact"/>
    /// on CUDA switches the invariance off.
    /// </summary>
    public BatchShapes? Shapes { get; init; }

    /// <summary>
    /// Keep decode calls' pasts resident where the model runs (<c>--resident-kv on|off</c>): on CUDA,
    /// in GPU memory bound to the graph, each step writing only its new positions (see
    /// <see cref="Resident.ResidentKvPool"/>). Needs fixed decode shapes (decode=N,context). Null: on
    /// for CUDA with fixed shapes, off on the CPU (where it runs in host memory, for tests).
    /// </summary>
    public bool? ResidentKv { get; init; }

    /// <summary>
    /// Capture each resident decode call as a CUDA graph and replay it (<c>--cuda-graph on|off</c>;
    /// ONNX Runtime's enable_cuda_graph): one launch per step instead of one per kernel. Needs the
    /// resident pool on CUDA. Null: on where the pool is in CUDA memory, off elsewhere.
    /// </summary>
    public bool? CudaGraph { get; init; }

    /// <summary>
    /// With CUDA graphs, run prefill calls on the thread that runs the resident decode calls, so the
    /// GPU takes them between decode calls instead of beside them (<c>--serial-prefill on|off</c>). Beside
    /// them, a burst's prefill calls ran at a third of their speed while decode kept the GPU busy, and
    /// prompts joined decoding late. Null: on wherever CUDA graphs are.
    /// </summary>
    public bool? SerialPrefill { get; init; }

    /// <summary>
    /// Write ONNX Runtime's profile (every node's time and provider, as Chrome-trace JSON) to a file
    /// starting with this prefix when the model is disposed (<c>bench --profile PREFIX</c>); null: no profile.
    /// </summary>
    public string? ProfilePrefix { get; init; }

    /// <summary>
    /// How the converted graph computes attention (<c>--attention blocks|group-query</c>). Null: ONNX
    /// Runtime's GroupQueryAttention on the CPU with exact shapes and staged pasts (one node per
    /// layer instead of ~50), the block graph wherever the CUDA paths need it (CUDA, fixed shapes,
    /// resident pasts).
    /// </summary>
    public AttentionKernel? Attention { get; init; }

    /// <summary>
    /// Run resident decode calls on a second graph that attends with GroupQueryAttention in float16
    /// (keys, values and pasts float16; the pool half the size), while prefill keeps the block graph.
    /// Null: on for CUDA with <c>--quantize f16</c>, the resident pool and no <c>--attention blocks</c>
    /// (CUDA's GroupQueryAttention takes only float16); true asks for it anywhere a resident pool runs
    /// (the CPU's host-memory pool, for tests).
    /// </summary>
    public bool? HalfResidentDecode { get; init; }

    /// <summary>
    /// Prompts' first chunks run on the float16 GroupQueryAttention graph as well, in a session of
    /// their own (fixed prefill rows, no past): null or true wherever resident decode calls run that
    /// graph; false keeps every prefill call on the model's own graph.
    /// </summary>
    public bool? HalfPrefill { get; init; }

    /// <summary>The graph resident decode calls run (set by the loader when <see cref="HalfResidentDecode"/> holds); null: the model's own.</summary>
    internal string? DecodeGraphPath { get; init; }

    /// <summary>Whether these options want the float16 GroupQueryAttention graph for resident decode calls.</summary>
    internal bool WantsHalfResidentDecode() =>
        HalfResidentDecode ?? (UseCuda && Quantize == WeightQuantization.F16 && ResidentKv != false && Attention != AttentionKernel.Blocks
                               && Shapes is not { IsExact: true });

    /// <summary>The attention these options ask of the converter (<see cref="Attention"/>, else by provider and shapes).</summary>
    /// <remarks>
    /// On CUDA the model's own graph is always the block one (its prefill shapes are proven invariant,
    /// and CUDA's GroupQueryAttention takes only float16): <see cref="Attention"/> there picks the
    /// resident decode graph (<see cref="WantsHalfResidentDecode"/>).
    /// </remarks>
    internal AttentionKernel AttentionKernelFor() =>
        UseCuda ? AttentionKernel.Blocks
        : Attention ?? (ResidentKv == true || Shapes is { IsExact: false } ? AttentionKernel.Blocks : AttentionKernel.GroupQuery);
}
