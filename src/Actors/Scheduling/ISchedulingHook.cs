namespace Pipeline.Actors.Scheduling;

/// <summary>The hand-offs between actors where a scheduling hook is consulted.</summary>
internal enum HandOff
{
    Admitted,
    Tokenized,
    PrefillChunk,
    Prefilled,
    Stepped,
    Sampled,
    Joined,
    Emitted,
}

/// <summary>
/// The seam through which tests steer the interleaving: every actor calls it before each
/// message it sends, and the prefill and decode actors when they form a batch. Production uses
/// <see cref="NoSchedulingHook"/>. A hook may delay or yield; it must not change messages.
/// </summary>
internal interface ISchedulingHook
{
    ValueTask BeforeHandOffAsync(HandOff point, long requestId);

    /// <summary>
    /// Which of the ready sequences run in this model call, and in what row order: indices into
    /// <paramref name="ready"/>, distinct, at least one. The rest wait for the next call.
    /// </summary>
    IReadOnlyList<int> FormBatch(HandOff kind, IReadOnlyList<long> ready);
}

internal sealed class NoSchedulingHook : ISchedulingHook
{
    public static readonly NoSchedulingHook Instance = new();
    private NoSchedulingHook() { }
    public ValueTask BeforeHandOffAsync(HandOff point, long requestId) => ValueTask.CompletedTask;
    public IReadOnlyList<int> FormBatch(HandOff kind, IReadOnlyList<long> ready) => AllInOrder(ready.Count);

    private static int[] AllInOrder(int count)
    {
        var all = new int[count];
        for (int i = 0; i < count; i++) all[i] = i;
        return all;
    }
}
