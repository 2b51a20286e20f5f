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
    /// <summary>Detokenize is about to deliver a message to the caller's sink.</summary>
    Delivered,
}

/// <summary>
/// The seam through which tests steer the interleaving: every actor calls it before each
/// message it sends, and the prefill and decode actors when they form a batch. Production uses
/// <see cref="NoSchedulingHook"/>. A hook may delay or yield; it must not change messages.
/// A hook that throws is a fault of the actor handing off (outside that actor's filters): the
/// one seam through which tests inject faults into each actor (tests/Integration/SupervisionTests).
/// </summary>
internal interface ISchedulingHook
{
    ValueTask BeforeHandOffAsync(HandOff point, long requestId);

    /// <summary>
    /// Which of the ready sequences run in this model call, and in what row order: indices into
    /// <paramref name="ready"/>, distinct, at least one. The rest wait for the next call.
    /// </summary>
    IReadOnlyList<int> FormBatch(HandOff kind, IReadOnlyList<long> ready);

    /// <summary>
    /// Just before the work of a stage on <paramref name="requestIds"/>: a prefill model call
    /// (<see cref="HandOff.PrefillChunk"/>), a decode model call (<see cref="HandOff.Stepped"/>)
    /// or one draw (<see cref="HandOff.Sampled"/>). Throwing an <see cref="ArgumentException"/> or
    /// <see cref="InvalidOperationException"/> here is that work failing (only those requests
    /// fail); anything else is a fault of the actor. Production does nothing.
    /// </summary>
    void BeforeWork(HandOff stage, IReadOnlyList<long> requestIds) { }
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
