using Pipeline.Inference.Sampling;

namespace Pipeline.Actors;

/// <summary>What one request asks for, as the actors see it. Immutable.</summary>
public sealed record RequestSpec
{
    public required long Id { get; init; }
    /// <summary>Text to encode (with BOS), or null when <see cref="PromptIds"/> is given.</summary>
    public string? Prompt { get; init; }
    public IReadOnlyList<int>? PromptIds { get; init; }
    public required SamplingOptions Sampling { get; init; }
    public required int MaxTokens { get; init; }
    public required ulong Seed { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];
    /// <summary>Keep a copy of the logits each token was sampled from.</summary>
    public bool CaptureLogits { get; init; }
    /// <summary>Report the log-probability of each chosen token and of this many alternatives.</summary>
    public int TopLogprobs { get; init; }
    public bool Logprobs { get; init; }
}
