using System.Diagnostics;
using System.Runtime.InteropServices;
using Pipeline.Actors.Admission;
using Pipeline.Inference.Runtime;
using Pipeline.Inference.Text;

namespace Pipeline.Actors;

/// <summary>
/// One request's mutable state: its KV cache, its place in the prompt, its generated ids and its
/// stop matcher. It is moved from actor to actor by message and touched only by the actor that
/// holds it; no two actors hold it at once. Each change is a named step of its life (tokenized,
/// KV memory reserved, prefill started, prefill advanced, token accepted, cache released), not a setter.
/// </summary>
internal sealed class Sequence
{
    private readonly List<int> _completion = [];
    // Prompt then completion: what the repetition penalty looks at.
    private readonly List<int> _history = [];
    private readonly StopMatcher _stop;
    private List<float[]>? _logits;
    private KvReservation? _reservation;

    public Sequence(AdmittedRequest request, CancellationToken cancellation)
    {
        Request = request;
        Cancellation = cancellation;
        _stop = new StopMatcher(request.Request.Stop);
    }

    public AdmittedRequest Request { get; }
    public GenerationRequest Options => Request.Request;
    public CancellationToken Cancellation { get; }
    public long Id => Request.Id;
    public bool IsCancelled => Cancellation.IsCancellationRequested;

    public int[] PromptIds { get; private set; } = [];
    public KvCache? Cache { get; private set; }
    /// <summary>Positions its KV cache may hold: what the tokenize actor reserved for it from the host's KV budget.</summary>
    public int ReservedPositions { get; private set; }
    /// <summary>Prompt positions already in the cache.</summary>
    public int Prefilled { get; private set; }
    public IReadOnlyList<int> Completion => _completion;
    public ReadOnlySpan<int> History => CollectionsMarshal.AsSpan(_history);
    public IReadOnlyList<float[]>? Logits => _logits;
    /// <summary>Byte offset in the output where a stop string begins, once one matched.</summary>
    public long? StopAt { get; private set; }
    /// <summary>Trailing bytes of the text that may begin a stop string, after the last token.</summary>
    public int HeldBytes => _stop.PartialMatchLength;

    public long PrefillStartedAt { get; private set; }
    public long FirstTokenAt { get; private set; }

    public int LastId => _completion.Count > 0 ? _completion[^1] : PromptIds[^1];

    public void Tokenized(int[] promptIds)
    {
        PromptIds = promptIds;
        _history.AddRange(promptIds);
    }

    /// <summary>KV budget was reserved for <paramref name="positions"/> positions of this sequence's cache.</summary>
    public void Reserved(KvReservation reservation, int positions)
    {
        _reservation = reservation;
        ReservedPositions = positions;
    }

    public void StartPrefill(KvCache cache)
    {
        PrefillStartedAt = Stopwatch.GetTimestamp();
        Cache = cache;
    }

    public void AdvancePrefill(int positions) => Prefilled += positions;

    /// <summary>The model produced logits for this sequence's next token (kept when the request asks for them).</summary>
    public void LogitsSeen(ReadOnlySpan<float> logits)
    {
        if (Options.CaptureLogits) (_logits ??= []).Add(logits.ToArray());
        if (FirstTokenAt == 0) FirstTokenAt = Stopwatch.GetTimestamp();
    }

    /// <summary>Appends a generated token whose text is <paramref name="bytes"/>; true when that completes a stop string.</summary>
    public bool Accept(int token, ReadOnlySpan<byte> bytes)
    {
        _completion.Add(token);
        _history.Add(token);
        StopAt = _stop.Append(bytes);
        return StopAt is not null;
    }

    /// <summary>
    /// Frees the KV cache and returns its reservation to the budget: both on every path by which a
    /// request ends (finished, cancelled, failed, or failed by the wiring after an abort).
    /// </summary>
    public void ReleaseCache()
    {
        Cache?.Dispose();
        Cache = null;
        _reservation?.Dispose();
        _reservation = null;
    }

    /// <summary>The result of a sequence that ended with <paramref name="reason"/> and <paramref name="text"/>.</summary>
    public GenerationResult Result(FinishReason reason, string text)
    {
        long now = Stopwatch.GetTimestamp();
        long submitted = Request.SubmittedAt;
        return new GenerationResult
        {
            PromptIds = PromptIds,
            CompletionIds = _completion.ToArray(),
            Text = text,
            FinishReason = reason,
            Seed = Request.Seed,
            Timings = new GenerationTimings(
                Since(submitted, PrefillStartedAt == 0 ? now : PrefillStartedAt),
                FirstTokenAt == 0 ? null : Since(submitted, FirstTokenAt),
                Since(submitted, now)),
            Logits = _logits,
        };
    }

    private static TimeSpan Since(long start, long end) => start == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(start, end);
}
