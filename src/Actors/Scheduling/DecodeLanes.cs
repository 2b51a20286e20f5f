namespace Pipeline.Actors.Scheduling;

/// <summary>
/// The decode actor's running sequences (up to <c>maxBatch</c>) in lanes of at most
/// <c>laneRows</c>. Each lane is stepped on its own, so while one lane's rows are drawn by sample the
/// next lane's call runs, and the device is not idle while the host samples. A sequence keeps its
/// lane until it leaves (its past stays in that lane's pool); a new one joins the emptiest lane
/// with room, or a new lane. With one lane (<c>laneRows</c> = <c>maxBatch</c>: the CPU) a step is
/// every running sequence, as it always was.
/// </summary>
internal sealed class DecodeLanes(int maxBatch, int laneRows, ISchedulingHook hook) : IDisposable
{
    private readonly List<DecodeLane> _lanes = [];
    // Where the round of lanes goes on: each idle lane gets its turn.
    private int _next;

    /// <summary>Running sequences in all lanes.</summary>
    public int Count => _lanes.Sum(l => l.Batch.Count);

    public bool HasRoom => Count < maxBatch;

    /// <summary>Every running sequence, lane by lane.</summary>
    public IEnumerable<Sequence> Rows => _lanes.SelectMany(l => l.Batch.Rows);

    /// <summary>The lanes so far, in turn order (a lane stays, empty or not, until the actor stops).</summary>
    public IReadOnlyList<DecodeLane> Lanes => _lanes;

    /// <summary>Lanes with at least one sequence.</summary>
    public int Occupied => _lanes.Count(l => l.Batch.Count > 0);

    public void Join(Sequence sequence)
    {
        if (!HasRoom) throw new InvalidOperationException($"the decode batch is full ({maxBatch} sequences)");
        DecodeLane? emptiest = null;
        foreach (var lane in _lanes)
            if (lane.Batch.HasRoom && (emptiest is null || lane.Batch.Count < emptiest.Batch.Count)) emptiest = lane;
        if (emptiest is null)
        {
            emptiest = new DecodeLane(laneRows, hook);
            _lanes.Add(emptiest);
        }
        emptiest.Batch.Join(sequence);
    }

    /// <summary>The next lane in turn that has sequences and is not busy, or null.</summary>
    public DecodeLane? NextIdle()
    {
        for (int i = 0; i < _lanes.Count; i++)
        {
            int at = (_next + i) % _lanes.Count;
            var lane = _lanes[at];
            if (lane.Busy || lane.Batch.Count == 0) continue;
            _next = (at + 1) % _lanes.Count;
            return lane;
        }
        return null;
    }

    public void Dispose()
    {
        foreach (var lane in _lanes) lane.Dispose();
        _lanes.Clear();
    }
}
