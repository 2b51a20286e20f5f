using Pipeline.Inference.Sampling;

namespace Pipeline;

/// <summary>One generation: a prompt and how to continue it.</summary>
public sealed record GenerationRequest
{
    /// <summary>The text to continue (encoded with BOS). Ignored when <see cref="PromptIds"/> is set.</summary>
    public string? Prompt { get; init; }
    /// <summary>Token ids to continue, BOS included.</summary>
    public IReadOnlyList<int>? PromptIds { get; init; }
    public int MaxTokens { get; init; } = 256;
    /// <summary>When absent, the host picks one and reports it in the result so the run can be replayed.</summary>
    public ulong? Seed { get; init; }
    public float Temperature { get; init; } = 1f;
    public float TopP { get; init; } = 1f;
    public int TopK { get; init; }
    public float MinP { get; init; }
    public float RepetitionPenalty { get; init; } = 1f;
    /// <summary>Generation ends when the text contains one of these; the text stops before it.</summary>
    public IReadOnlyList<string> Stop { get; init; } = [];
    /// <summary>Report each chosen token's log-probability, with this many alternatives.</summary>
    public bool Logprobs { get; init; }
    public int TopLogprobs { get; init; }
    /// <summary>Keep the raw logits each token was sampled from in the result.</summary>
    public bool CaptureLogits { get; init; }

    internal SamplingOptions Sampling => new()
    {
        Temperature = Temperature, TopP = TopP, TopK = TopK, MinP = MinP, RepetitionPenalty = RepetitionPenalty,
    };
}
