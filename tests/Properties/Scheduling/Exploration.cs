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
    private readonly ConcurrentDictionary<CancelStage, int> _cancelledAt = new();
    private readonly ConcurrentDictionary<FailStage, int> _failedAt = new();

    public int Cases => _cases;
    public int Requests => _requests;
    public int Cancelled => _cancelled;
    /// <summary>Requests that waited for KV budget, over all cases.</summary>
    public long KvWaits => Interlocked.Read(ref _kvWaits);
    public int DistinctBatchCompositions => _compositions.Count;
    public int DistinctHandOffOrders => _orders.Count;

    /// <summary>Requests that ended cancelled at <paramref name="stage"/>, cancelled there from inside the pipeline.</summary>
    public int CancelledAt(CancelStage stage) => _cancelledAt.GetValueOrDefault(stage);

    /// <summary>Planned failures of <paramref name="stage"/> that happened.</summary>
    public int FailedAt(FailStage stage) => _failedAt.GetValueOrDefault(stage);

    public void Record(ScenarioRun run, Scenario scenario)
    {
        Record(run.Schedule, scenario.Requests.Length, scenario.Requests.Count(r => r.MayBeCancelled || r.FailAt is not null), run.KvWaits);
        foreach (var stage in run.CancelledAt.Values) _cancelledAt.AddOrUpdate(stage, 1, (_, n) => n + 1);
        foreach (var stage in run.FailedAt.Values) _failedAt.AddOrUpdate(stage, 1, (_, n) => n + 1);
    }

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
        $"{Cases} cases, {Requests} requests ({Cancelled} to be cancelled; landed in the pipeline: "
        + string.Join(", ", Enum.GetValues<CancelStage>().Select(s => $"{s} {CancelledAt(s)}"))
        + "; failures made: " + string.Join(", ", Enum.GetValues<FailStage>().Select(s => $"{s} {FailedAt(s)}"))
        + $"), {KvWaits} waits for KV budget, {DistinctBatchCompositions} distinct batch compositions, {DistinctHandOffOrders} distinct hand-off orders";
}
