using System.Collections.Concurrent;
using Pipeline.Actors.Scheduling;
using Pipeline.Wiring;

namespace Pipeline.Properties.Scheduling;

/// <summary>
/// A scheduling hook driven by a seed: at every hand-off it does nothing, yields, or sleeps a
/// little; at every batch formation it may cut the batch short and reorder it. It records what it
/// saw so that a property can show it explored more than one interleaving.
/// </summary>
internal sealed class SeededSchedule(ulong seed, int yieldPercent, int delayPercent, int splitPercent) : ISchedulingHook
{
    private long _draws;
    private readonly ConcurrentQueue<string> _handOffs = new();
    private readonly ConcurrentQueue<string> _batches = new();

    /// <summary>Request ids in submission order, to name requests by their index in the scenario.</summary>
    public ConcurrentDictionary<long, int> IndexOf { get; } = new();

    public IEnumerable<string> HandOffs => _handOffs;
    public IEnumerable<string> Batches => _batches;

    private ulong Next()
    {
        ulong z = seed + (ulong)Interlocked.Increment(ref _draws) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private string Name(long id) => IndexOf.TryGetValue(id, out var i) ? $"r{i}" : $"#{id}";

    public async ValueTask BeforeHandOffAsync(HandOff point, long requestId)
    {
        _handOffs.Enqueue($"{point}:{Name(requestId)}");
        int roll = (int)(Next() % 100);
        if (roll < delayPercent) await Task.Delay(1 + (int)(Next() % 3));
        else if (roll < delayPercent + yieldPercent) await Task.Yield();
    }

    public IReadOnlyList<int> FormBatch(HandOff kind, IReadOnlyList<long> ready)
    {
        int n = ready.Count;
        var order = Enumerable.Range(0, n).ToArray();
        int take = n;
        if ((int)(Next() % 100) < splitPercent)
        {
            for (int i = n - 1; i > 0; i--)
            {
                int j = (int)(Next() % (ulong)(i + 1));
                (order[i], order[j]) = (order[j], order[i]);
            }
            take = 1 + (int)(Next() % (ulong)n);
        }
        var chosen = order[..take];
        _batches.Enqueue($"{kind}:{string.Join(',', chosen.Select(i => Name(ready[i])).Order(StringComparer.Ordinal))}");
        return chosen;
    }
}
