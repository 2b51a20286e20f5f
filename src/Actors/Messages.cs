using Pipeline.Inference.Sampling;

namespace Pipeline.Actors;

/// <summary>A caller's request entering the pipeline.</summary>
internal sealed record Submission(Sequence Sequence);

/// <summary>Prefill → sample: the prompt is in the cache; these are the logits of its last token.</summary>
internal sealed record PrefillDone(Sequence Sequence, float[] Logits);

/// <summary>Decode → sample: one step's sequences and their logits ([batch, vocab]). At most one is in flight.</summary>
internal sealed record StepDone(IReadOnlyList<Sequence> Sequences, float[] Logits);

/// <summary>Sample → decode: the reply to a <see cref="StepDone"/>, the sequences that go on.</summary>
internal sealed record StepSampled(IReadOnlyList<Sequence> Continuing);

/// <summary>
/// Any actor → detokenize: a sampled token (or none), and whether the sequence has ended.
/// A final message hands the sequence itself over; others carry only immutable parts.
/// </summary>
internal sealed record Emission(long Id, RequestSpec Spec, IRequestSink Sink, int PreviousId, int TokenId, TokenLogprob? Logprob, Sequence? Final, FinishReason Reason)
{
    /// <summary>Set when the sequence failed (the model or the sampler threw): it ends with this error.</summary>
    public Exception? Error { get; init; }

    public static Emission Failure(Sequence s, Exception error) =>
        new(s.Id, s.Spec, s.Sink, -1, -1, null, s, FinishReason.Cancelled) { Error = error };
}
