namespace Pipeline.Actors;

/// <summary>How a request ended, with everything needed to replay it.</summary>
public sealed record SequenceOutcome(
    IReadOnlyList<int> PromptIds,
    IReadOnlyList<int> CompletionIds,
    string Text,
    FinishReason FinishReason,
    ulong Seed,
    TimeSpan Queued,
    TimeSpan? TimeToFirstToken,
    TimeSpan Total,
    IReadOnlyList<float[]>? Logits);
