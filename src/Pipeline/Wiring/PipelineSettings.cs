using Pipeline.Actors.Scheduling;

namespace Pipeline.Wiring;

/// <summary>Capacities and limits of one actor pipeline.</summary>
internal sealed record PipelineSettings
{
    /// <summary>Sequences per decode step.</summary>
    public int MaxBatch { get; init; } = 32;
    /// <summary>Prompts whose prefill chunks share one model call.</summary>
    public int MaxPrefillBatch { get; init; } = 8;
    /// <summary>Requests tokenized at once (tokenize is stateless, so one long prompt need not hold up the rest).</summary>
    public int TokenizeParallelism { get; init; } = 2;
    public int AdmissionCapacity { get; init; } = 64;
    public int PrefillCapacity { get; init; } = 8;
    public int PrefilledCapacity { get; init; } = 8;
    public int JoinCapacity { get; init; } = 8;
    public int StepCapacity { get; init; } = 1;
    public int DetokenizeCapacity { get; init; } = 64;
    public ISchedulingHook Hook { get; init; } = NoSchedulingHook.Instance;

    /// <summary>Every channel with the same capacity (tests sweep this).</summary>
    public PipelineSettings WithAllCapacities(int capacity) => this with
    {
        AdmissionCapacity = capacity, PrefillCapacity = capacity, PrefilledCapacity = capacity,
        JoinCapacity = capacity, StepCapacity = capacity, DetokenizeCapacity = capacity,
    };

    public void Validate()
    {
        foreach (var (name, value) in new[] { ("MaxBatch", MaxBatch), ("MaxPrefillBatch", MaxPrefillBatch), ("TokenizeParallelism", TokenizeParallelism), ("AdmissionCapacity", AdmissionCapacity),
                     ("PrefillCapacity", PrefillCapacity), ("PrefilledCapacity", PrefilledCapacity), ("JoinCapacity", JoinCapacity),
                     ("StepCapacity", StepCapacity), ("DetokenizeCapacity", DetokenizeCapacity) })
            if (value < 1) throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least 1");
    }
}
