using Pipeline.Inference.Sampling;

namespace Pipeline.Benchmarks;

/// <summary>What every mode is asked to do: the same requests, prompts and seeds.</summary>
internal sealed record Workload
{
    public int PromptTokens { get; init; } = 32;
    public int MaxTokens { get; init; } = 64;
    /// <summary>Every request generates exactly <see cref="MaxTokens"/>: end tokens do not end it (see <see cref="GenerationRequest.IgnoreEos"/>).</summary>
    public bool IgnoreEos { get; init; }
    public int RequestCount { get; init; } = 64;
    public ArrivalPattern Arrival { get; init; } = ArrivalPattern.AllAtOnce;
    /// <summary>Seeds the prompts, the arrival times and every request's sampling seed.</summary>
    public ulong Seed { get; init; } = 42;
    /// <summary>Plain temperature sampling, so the check covers the sampler's seeded draws too.</summary>
    public SamplingOptions Sampling { get; init; } = new() { Temperature = 1f };

    /// <summary>The requests: BOS then random ids (never a control id), each with its own seed and arrival time.</summary>
    public IReadOnlyList<BenchRequest> CreateRequests(int vocabSize, int contextLength)
    {
        if (PromptTokens < 1 || MaxTokens < 1 || RequestCount < 1)
            throw new ArgumentException("prompt tokens, max tokens and requests must each be at least 1");
        if (PromptTokens + MaxTokens > contextLength)
            throw new ArgumentException($"prompt ({PromptTokens}) + max tokens ({MaxTokens}) exceeds the model's context of {contextLength}");
        var random = new SplitMixRandom(Seed);
        var offsets = Arrival.Offsets(RequestCount, Seed ^ 0xA5A5_5A5A_0F0F_F0F0UL);
        var requests = new BenchRequest[RequestCount];
        for (int i = 0; i < RequestCount; i++)
        {
            var prompt = new int[PromptTokens];
            prompt[0] = 1; // BOS
            for (int j = 1; j < prompt.Length; j++) prompt[j] = random.NextInt(3, vocabSize);
            requests[i] = new BenchRequest(i, prompt, random.NextUInt64(), offsets[i]);
        }
        return requests;
    }
}

/// <summary>One request of a workload: its prompt ids (BOS first), sampling seed and arrival time.</summary>
internal sealed record BenchRequest(int Index, int[] PromptIds, ulong Seed, TimeSpan ArrivalOffset);
