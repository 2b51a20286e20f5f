using Pipeline.Actors.Scheduling;

namespace Pipeline.Integration;

/// <summary>
/// A scheduling hook that runs a test's action at a chosen hand-off, batch formation or piece of
/// work (to cancel a request exactly there, or make that work fail), and otherwise lets
/// everything through in order. Counts how often each point was reached.
/// </summary>
internal sealed class StageHook : ISchedulingHook
{
    private readonly Dictionary<HandOff, int> _seen = [];
    private readonly Lock _gate = new();

    public Action<HandOff, int>? OnHandOff { get; init; }
    public Action<HandOff, int>? OnBatch { get; init; }
    public Action<HandOff, int>? OnWork { get; init; }

    /// <summary>Times <paramref name="point"/> was reached, over hand-offs, batches and work.</summary>
    public int Seen(HandOff point)
    {
        lock (_gate) return _seen.GetValueOrDefault(point);
    }

    private int Count(HandOff point)
    {
        lock (_gate) return _seen[point] = _seen.GetValueOrDefault(point) + 1;
    }

    public ValueTask BeforeHandOffAsync(HandOff point, long requestId)
    {
        OnHandOff?.Invoke(point, Count(point));
        return ValueTask.CompletedTask;
    }

    public IReadOnlyList<int> FormBatch(HandOff kind, IReadOnlyList<long> ready)
    {
        OnBatch?.Invoke(kind, Count(kind));
        return Enumerable.Range(0, ready.Count).ToArray();
    }

    public void BeforeWork(HandOff stage, IReadOnlyList<long> requestIds) => OnWork?.Invoke(stage, Count(stage));
}
