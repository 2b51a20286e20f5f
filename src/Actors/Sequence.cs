using System.Diagnostics;
using Pipeline.Inference.Runtime;

namespace Pipeline.Actors;

/// <summary>
/// One request's mutable state: its KV cache, its place in the prompt, its generated ids and its
/// stop matcher. It is moved from actor to actor by message and touched only by the actor that
/// holds it; no two actors hold it at once.
/// </summary>
internal sealed class Sequence
{
    public Sequence(RequestSpec spec, IRequestSink sink, long submittedAt, CancellationToken cancellation)
    {
        Spec = spec;
        Sink = sink;
        Cancellation = cancellation;
        SubmittedAt = submittedAt;
        Stop = new StopMatcher(spec.Stop);
    }

    public RequestSpec Spec { get; }
    public IRequestSink Sink { get; }
    public CancellationToken Cancellation { get; }
    public long Id => Spec.Id;
    public bool IsCancelled => Cancellation.IsCancellationRequested;

    public int[] PromptIds { get; set; } = [];
    public KvCache? Cache { get; set; }
    /// <summary>Prompt positions already in the cache.</summary>
    public int Prefilled { get; set; }
    public List<int> Completion { get; } = [];
    /// <summary>Prompt then completion: what the repetition penalty looks at.</summary>
    public List<int> History { get; } = [];
    public StopMatcher Stop { get; }
    public List<float[]>? Logits { get; set; }
    /// <summary>Byte offset in the output where a stop string begins, once one matched.</summary>
    public long? StopAt { get; set; }

    public long SubmittedAt { get; }
    public long PrefillStartedAt { get; set; }
    public long FirstTokenAt { get; set; }

    public int LastId => Completion.Count > 0 ? Completion[^1] : PromptIds[^1];

    public void ReleaseCache()
    {
        Cache?.Dispose();
        Cache = null;
    }

    public static TimeSpan Since(long start, long end) => start == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(start, end);
}
