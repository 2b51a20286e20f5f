using Pipeline.Actors.Scheduling;

namespace Pipeline.Integration;

/// <summary>
/// The test seam for supervision: a scheduling hook that throws at one hand-off point, which is a
/// fault (outside every filter) of the actor handing off there. Throws the first
/// <paramref name="times"/> times the point is reached after <paramref name="skip"/> passes.
/// </summary>
internal sealed class FaultAt(HandOff point, Func<Exception> error, int skip = 0, int times = 1) : ISchedulingHook
{
    private int _seen;
    private int _thrown;
    private int _eligible;

    public int Thrown => Volatile.Read(ref _thrown);

    public ValueTask BeforeHandOffAsync(HandOff at, long requestId)
    {
        if (at == point && Interlocked.Increment(ref _seen) > skip && Interlocked.Increment(ref _eligible) <= times)
        {
            Interlocked.Increment(ref _thrown);
            throw error();
        }
        return ValueTask.CompletedTask;
    }

    public IReadOnlyList<int> FormBatch(HandOff kind, IReadOnlyList<long> ready) => Enumerable.Range(0, ready.Count).ToArray();
}
