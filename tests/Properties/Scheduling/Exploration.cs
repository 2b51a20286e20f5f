using System.Collections.Concurrent;

namespace Pipeline.Properties.Scheduling;

/// <summary>What a property run actually explored, summed over its cases.</summary>
internal sealed class Exploration
{
    private readonly ConcurrentDictionary<string, byte> _compositions = new();
    private readonly ConcurrentDictionary<string, byte> _orders = new();
    private int _cases;
    private int _requests;
    private int _cancelled;
    private long _kvWaits;

    public int Cases => _cases;
    public int Requests => _requests;
    public int Cancelled => _cancelled;
    /// <summary>Requests that waited for KV budget, over all cases.</summary>
    public long KvWaits => Interlocked.Read(ref _kvWaits);
    public int DistinctBatchCompositions => _compositions.Count;
    public int DistinctHandOffOrders => _orders.Count;

    public void Record(SeededSchedule schedule, int requests, int cancelled, long kvWaits = 0)
    {
        Interlocked.Add(ref _kvWaits, kvWaits);
        Interlocked.Increment(ref _cases);
        Interlocked.Add(ref _requests, requests);
        Interlocked.Add(ref _cancelled, cancelled);
        foreach (var b in schedule.Batches) _compositions.TryAdd(b, 0);
        _orders.TryAdd(string.Join('|', schedule.HandOffs), 0);
    }

    public override string ToString() =>
        $"{Cases} cases, {Requests} requests ({Cancelled} cancelled), {KvWaits} waits for KV budget, {DistinctBatchCompositions} distinct batch compositions, {DistinctHandOffOrders} distinct hand-off orders";
}
