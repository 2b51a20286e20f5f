namespace Pipeline;

/// <summary>The whole of a finished generation, with everything needed to replay it.</summary>
public sealed record GenerationResult
{
    public required IReadOnlyList<int> PromptIds { get; init; }
    public required IReadOnlyList<int> CompletionIds { get; init; }
    public required string Text { get; init; }
    public required FinishReason FinishReason { get; init; }
    public required ulong Seed { get; init; }
    public required GenerationTimings Timings { get; init; }
    /// <summary>Per generated token (and for an end token, the step that chose it), when asked for.</summary>
    public IReadOnlyList<float[]>? Logits { get; init; }
    /// <summary>The events streamed for this generation, in order.</summary>
    public IReadOnlyList<TokenEvent> Tokens { get; init; } = [];
}

/// <summary>Time in the admission queue, to the first token, and in all.</summary>
public sealed record GenerationTimings(TimeSpan Queued, TimeSpan? TimeToFirstToken, TimeSpan Total);
