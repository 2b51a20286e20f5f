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
    /// ONNX Runtime intra-op threads for the one shared session; 0 lets ONNX Runtime choose. One by
    /// default: on a 2-core machine ONNX Runtime's spinning workers fight the actors and samplers.
    /// </summary>
    public int IntraOpThreads { get; init; } = 1;
    public string? CacheDirectory { get; init; }
}

/// <summary>Where a benchmark is: which run of how many, and how many of its requests are done.</summary>
internal sealed record BenchProgress(int RunNumber, int RunCount, string Mode, int Concurrency, int RequestsDone, int RequestCount);
