using Pipeline.Actors.Scheduling;
using Pipeline.Wiring;

namespace Pipeline;

/// <summary>What to load and how to run it.</summary>
public sealed record PipelineHostOptions
{
    /// <summary>
    /// The model: a Hugging Face folder, a GGUF file (or a folder holding one), a llama2.c folder,
    /// or a folder with an exported model.onnx; null means the embedded stories260K.
    /// </summary>
    public string? ModelPath { get; init; }
    /// <summary>Caps the context (positions per sequence) below the model's own maximum, bounding KV memory; null keeps the model's.</summary>
    public int? ContextLength { get; init; }
    /// <summary>Sequences per decode step.</summary>
    public int MaxBatch { get; init; } = 32;
    /// <summary>Capacity of the bounded channels between actors.</summary>
    public int ChannelCapacity { get; init; } = 8;
    /// <summary>Requests tokenized at once, so that one long prompt does not hold up the rest.</summary>
    public int TokenizeParallelism { get; init; } = 2;
    /// <summary>Requests that may wait for tokenization.</summary>
    public int AdmissionCapacity { get; init; } = 64;
    /// <summary>
    /// Bytes of KV cache the host's requests may hold at once (<c>--kv-budget</c>). Each request
    /// reserves its prompt + max_tokens positions (capped at the context) before prefill and
    /// releases them when it ends; while the budget is short, requests wait in line (then the
    /// admission queue fills, and a server answers 429), and a request that alone needs more than
    /// the whole budget fails at once. Null: half of the machine's memory
    /// (<see cref="GC.GetGCMemoryInfo()"/>'s <c>TotalAvailableMemoryBytes</c>) minus the model's
    /// weights, but never less than one sequence of the full context.
    /// </summary>
    public long? KvBudgetBytes { get; init; }
    /// <summary>When the admission queue is full: wait (default) or fail with <see cref="PipelineBusyException"/>.</summary>
    public bool RejectWhenFull { get; init; }
    /// <summary>ONNX Runtime intra-op threads; 0 (the default) picks by model size: one below 256 MB of weights, every core above.</summary>
    public int IntraOpThreads { get; init; }
    public bool UseCuda { get; init; }
    /// <summary>Weight-only quantization applied when the model is converted (<c>--quantize q8|q4</c>).</summary>
    public Pipeline.Inference.Onnx.WeightQuantization Quantize { get; init; }
    public string? CacheDirectory { get; init; }
    /// <summary>Shapes model calls are padded to (<c>--batch-shapes</c>); null = the provider's default (batch-invariant on CUDA).</summary>
    internal Pipeline.Inference.Runtime.BatchShapes? Shapes { get; init; }

    /// <summary>Decode calls read pasts kept resident where the model runs (<c>--resident-kv</c>); null = the provider's default (on for CUDA).</summary>
    internal bool? ResidentKv { get; init; }

    /// <summary>How the converted graph attends (<c>--attention</c>); null: by provider and shapes.</summary>
    internal Pipeline.Inference.Onnx.AttentionKernel? Attention { get; init; }

    /// <summary>Intra-op workers spin (<c>--spin</c>); null: when there is more than one.</summary>
    internal bool? IntraOpSpinning { get; init; }

    /// <summary>Resident decode calls replayed as CUDA graphs (<c>--cuda-graph</c>); null = off.</summary>
    internal bool? CudaGraph { get; init; }
    /// <summary><c>--serial-prefill on|off</c> (see <see cref="RunnerOptions.SerialPrefill"/>); null: on wherever CUDA graphs are.</summary>
    internal bool? SerialPrefill { get; init; }
    /// <summary>
    /// Pipelines started to replace faulted ones before the host stays faulted (every request then
    /// fails at once with <see cref="PipelineUnavailableException"/>). A fault that recurs is a bug
    /// or a machine without memory; restarting forever would hide it.
    /// </summary>
    public int MaxRestarts { get; init; } = 3;

    /// <summary>Test seam: steers hand-offs and batch formation. Production leaves it null.</summary>
    internal ISchedulingHook? Hook { get; init; }
    /// <summary>Individual capacities, overriding <see cref="ChannelCapacity"/>, for tests.</summary>
    internal PipelineSettings? Settings { get; init; }
}
