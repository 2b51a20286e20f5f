using Pipeline.Inference.Sampling;

namespace Pipeline.Actors;

/// <summary>
/// A request as admitted: the caller's request, the id and seed the host gave it, and where its
/// progress goes. Immutable; every message about the request carries it.
/// </summary>
internal sealed record AdmittedRequest(long Id, GenerationRequest Request, ulong Seed, IRequestSink Sink, long SubmittedAt);

/// <summary>Prefill → sample: the prompt is in the cache; these are the logits of its last token.</summary>
internal sealed record PrefillDone(Sequence Sequence, float[] Logits);

/// <summary>
/// Decode → sample: the sequences of one lane's call and their logits ([n, vocab]: the lane's buffer,
/// or on a resident pool the part's own host memory; valid until the reply), where sequence i's logits
/// are row <see cref="Rows"/>[i] (row i without it). A lane is not called again before its reply, so
/// at most one message a lane is in flight.
/// </summary>
internal sealed record StepDone(IReadOnlyList<Sequence> Sequences, Memory<float> Logits, int[]? Rows = null)
{
    /// <summary>Sequence <paramref name="i"/>'s logits.</summary>
    public Memory<float> LogitsOf(int i, int vocab) => Logits.Slice((Rows is null ? i : Rows[i]) * vocab, vocab);
}

/// <summary>Sample → decode: the reply to a <see cref="StepDone"/>, the sequences that go on.</summary>
internal sealed record StepSampled(IReadOnlyList<Sequence> Continuing);

/// <summary>
/// Any actor → detokenize: a sampled token, or the end of a request. A final message hands the
/// sequence itself over (its ids, timings and logits make the result); others carry only
/// immutable parts. The one route by which a request ends: with a result, or with an error.
/// </summary>
internal sealed record Emission(AdmittedRequest Request)
{
    /// <summary>The token before <see cref="TokenId"/> (the prompt's last for the first token); decides its spelling.</summary>
    public int PreviousId { get; init; } = -1;

    /// <summary>The sampled token, or -1 when the message only ends the request.</summary>
    public int TokenId { get; init; } = -1;

    public SampledLogprobs? Logprobs { get; init; }

    /// <summary>Trailing bytes of the text that may begin a stop string: held back from the caller.</summary>
    public int HeldBytes { get; init; }

    /// <summary>On the last message of a request that ended normally: the sequence, handed over.</summary>
    public Sequence? Final { get; init; }

    /// <summary>With <see cref="Final"/>: why it ended.</summary>
    public FinishReason Reason { get; init; }

    /// <summary>On the last message of a request that failed (bad input, the model or the sampler threw).</summary>
    public Exception? Error { get; init; }

    public bool Ends => Final is not null || Error is not null;

    /// <summary>The request ends with <paramref name="reason"/>; its sequence is handed over.</summary>
    public static Emission End(Sequence sequence, FinishReason reason) => new(sequence.Request) { Final = sequence, Reason = reason };

    /// <summary>The request ends with <paramref name="error"/>.</summary>
    public static Emission Failure(AdmittedRequest request, Exception error) => new(request) { Error = error };
}
