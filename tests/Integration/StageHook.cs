using Pipeline.Actors.Scheduling;

namespace Pipeline.Integration;

/// <summary>
/// A scheduling hook that runs a test's action at a chosen hand-off, batch formation or piece of
/// work (to cancel a request exactly there, or make that work fail), and otherwise lets
/// everything through in order. Each action is given how often its own kind of call has reached
/// that point (hand-offs, batches and work are counted apart).
/// </summary>
internal sealed class StageHook : ISchedulingHook
{
    private readonly Dictionary<(string Kind, HandOff Point), int> _seen = [];
    private readonly Lock _gate = new();

    public Action<HandOff, int>? OnHandOff { get; init; }
    public Action<HandOff, int>? OnBatch { get; init; }
    public Action<HandOff, int>? OnWork { get; init; }

    /// <summary>Times the work at <paramref name="point"/> (a model call or a draw) was about to run.</summary>
    public int WorkSeen(HandOff point)
    {
        lock (_gate) return _seen.GetValueOrDefault(("work", point));
    }

    private int Count(string kind, HandOff point)
    {
        lock (_gate) return _seen[(kind, point)] = _seen.GetValueOrDefault((kind, point)) + 1;
    }

    public ValueTask BeforeHandOffAsync(HandOff point, long requestId)
    {
        OnHandOff?.Invoke(point, Count("hand-off", point));
        return ValueTask.CompletedTask;
    }

    public IReadOnlyList<int> FormBatch(HandOff kind, IReadOnlyList<long> ready)
    {
        OnBatch?.Invoke(kind, Count("batch", kind));
        return Enumerable.Range(0, ready.Count).ToArray();
    }

    public void BeforeWork(HandOff stage, IReadOnlyList<long> requestIds) => OnWork?.Invoke(stage, Count("work", stage));
}
