namespace Pipeline.Benchmarks;

/// <summary>What to benchmark: a model folder, the workload, the concurrency sweep and the modes.</summary>
internal sealed record BenchOptions
{
    /// <summary>A model folder (llama2.c checkpoint + tokenizer, or model.onnx + tokenizer).</summary>
    /// <summary>Any model path the loader recognises (Hugging Face folder, GGUF file, llama2.c folder, model.onnx folder).</summary>
    public required string ModelPath { get; init; }
    /// <summary>Caps the model's context (<c>--context</c>); null keeps the model's.</summary>
    public int? ContextLength { get; init; }
    /// <summary>How the model is named in the report.</summary>
    public string? ModelDescription { get; init; }
    public Workload Workload { get; init; } = new();
    public IReadOnlyList<int> Concurrency { get; init; } = [1, 2, 4, 8, 16, 32, 64];
    public IReadOnlyList<BenchMode> Modes { get; init; } = BenchModes.All;
    /// <summary>
    /// ONNX Runtime intra-op threads for the one shared session; 0 (the default) is the runner's
    /// choice by model size, the same as the host's (one below 256 MB of weights, every core above).
    /// </summary>
    public int IntraOpThreads { get; init; }
    public string? CacheDirectory { get; init; }
    /// <summary>The pipeline mode's KV budget in bytes (<c>--kv-budget</c>); null for the host's default.</summary>
    public long? KvBudgetBytes { get; init; }
    /// <summary>Weight-only quantization applied when the model is converted (<c>--quantize</c>).</summary>
    public Pipeline.Inference.Onnx.WeightQuantization Quantize { get; init; }
    /// <summary>Run on the CUDA execution provider (<c>--cuda</c>).</summary>
    public bool UseCuda { get; init; }
    /// <summary>Shapes model calls are padded to (<c>--batch-shapes</c>); null = the provider's default.</summary>
    public Pipeline.Inference.Runtime.BatchShapes? Shapes { get; init; }

    /// <summary>
    /// Count completions whose tokens differ between runs and report them instead of aborting
    /// (<c>--token-check report</c>): for measuring the engine with its invariance switched off.
    /// </summary>
    public bool ReportTokenMismatches { get; init; }

    /// <summary>Decode calls read resident pasts (<c>--resident-kv on|off</c>); null = the provider's default.</summary>
    public bool? ResidentKv { get; init; }

    /// <summary>How the graph attends (<c>--attention</c>); null: by provider and shapes.</summary>
    public Pipeline.Inference.Onnx.AttentionKernel? Attention { get; init; }

    /// <summary>Intra-op workers spin (<c>--spin</c>); null: when there is more than one.</summary>
    public bool? IntraOpSpinning { get; init; }

    /// <summary>Resident decode calls replayed as CUDA graphs (<c>--cuda-graph on|off</c>); null = off.</summary>
    public bool? CudaGraph { get; init; }
    /// <summary>See <see cref="RunnerOptions.SerialPrefill"/>; null: on wherever CUDA graphs are.</summary>
    public bool? SerialPrefill { get; init; }
    /// <summary>Prefix of ONNX Runtime's profile file (<c>--profile</c>); null: none.</summary>
    public string? ProfilePrefix { get; init; }
}

/// <summary>Where a benchmark is: which run of how many, and how many of its requests are done.</summary>
internal sealed record BenchProgress(int RunNumber, int RunCount, string Mode, int Concurrency, int RequestsDone, int RequestCount);
