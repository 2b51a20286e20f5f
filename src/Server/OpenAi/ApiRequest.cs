namespace Pipeline.Server.OpenAi;

/// <summary>
/// A /v1/completions or /v1/chat/completions request after parsing and type checks; range
/// checks of the sampling options are left to the host, which names the option when it refuses.
/// </summary>
internal sealed record ApiRequest
{
    public string? Model { get; init; }
    public required string Prompt { get; init; }
    public int MaxTokens { get; init; } = ApiRequestParser.DefaultMaxTokens;
    public float Temperature { get; init; } = 1f;
    public float TopP { get; init; } = 1f;
    public int TopK { get; init; }
    public float MinP { get; init; }
    public float RepetitionPenalty { get; init; } = 1f;
    public ulong? Seed { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];
    public bool Stream { get; init; }
    public bool IncludeUsage { get; init; }
    /// <summary>Parallel samples of the one prompt; sample i runs with seed + i.</summary>
    public int SampleCount { get; init; } = 1;
    public bool Logprobs { get; init; }
    public int TopLogprobs { get; init; }

    /// <summary>Sample <paramref name="index"/>'s request: the base seed plus its index, so each sample is replayable alone.</summary>
    public GenerationRequest ToGeneration(ulong baseSeed, int index) => new()
    {
        Prompt = Prompt,
        MaxTokens = MaxTokens,
        Temperature = Temperature,
        TopP = TopP,
        TopK = TopK,
        MinP = MinP,
        RepetitionPenalty = RepetitionPenalty,
        Seed = unchecked(baseSeed + (ulong)index),
        Stop = Stop,
        Logprobs = Logprobs,
        TopLogprobs = TopLogprobs,
    };
}
