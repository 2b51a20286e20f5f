using Pipeline.Inference.Runtime;

namespace Pipeline.Benchmarks;

/// <summary>Everything one mode needs for one run: the shared model, the requests, where to record.</summary>
internal sealed record ModeContext(
    LoadedModel Model,
    Workload Workload,
    IReadOnlyList<BenchRequest> Requests,
    IReadOnlyList<RequestTrace> Traces,
    int Concurrency,
    Action<int>? Completed,
    CancellationToken Cancellation)
{
    /// <summary>The pipeline host's KV budget (<c>--kv-budget</c>); null for the host's default.</summary>
    public long? KvBudgetBytes { get; init; }
}

/// <summary>
/// How long a run took, start to last completion, and the most KV memory it held at once; for the
/// actor pipeline also where its model time went.
/// </summary>
internal sealed record ModeOutcome(TimeSpan Wall, long PeakKvBytes, Pipeline.Actors.StepTimes? Times = null)
{
    /// <summary>The garbage collector's pauses during the run (filled in by the runner).</summary>
    public TimeSpan GcPause { get; init; }

    /// <summary>Full (gen2) collections during the run (filled in by the runner).</summary>
    public int FullCollections { get; init; }
}
