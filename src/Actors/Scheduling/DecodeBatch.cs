namespace Pipeline.Actors.Scheduling;

/// <summary>
/// The decode actor's running batch, without the model: sequences join between steps (up to
/// <c>maxBatch</c>) and leave when they end or are cancelled. A sequence leaves by swap: the last
/// row moves into its place, so every other sequence keeps its row and the model's staged past
/// needs copying for one row, not for all that follow.
/// </summary>
internal sealed class DecodeBatch(int maxBatch, ISchedulingHook hook)
{
    private readonly List<Sequence> _rows = [];

    /// <summary>The running sequences in row order.</summary>
    public IReadOnlyList<Sequence> Rows => _rows;

    public int Count => _rows.Count;

    public bool HasRoom => _rows.Count < maxBatch;

    public void Join(Sequence sequence) => _rows.Add(sequence);

    /// <summary>Removes (by swap) and returns the sequences whose requests were cancelled.</summary>
    public List<Sequence> RemoveCancelled()
    {
        var cancelled = new List<Sequence>();
        for (int i = _rows.Count - 1; i >= 0; i--)
            if (_rows[i].IsCancelled)
            {
                cancelled.Add(_rows[i]);
                RemoveAt(i);
            }
        return cancelled;
    }

    /// <summary>The sequences of the next step, in row order of the call (all of them unless a test hook says otherwise).</summary>
    public List<Sequence> NextStep() => BatchChoice.Split(hook, HandOff.Stepped, _rows).Batch;

    /// <summary>Removes (by swap) every sequence of <paramref name="ended"/>.</summary>
    public void Leave(IReadOnlySet<Sequence> ended)
    {
        ArgumentNullException.ThrowIfNull(ended);
        for (int i = _rows.Count - 1; i >= 0; i--)
            if (ended.Contains(_rows[i])) RemoveAt(i);
    }

    private void RemoveAt(int i)
    {
        _rows[i] = _rows[^1];
        _rows.RemoveAt(_rows.Count - 1);
    }
}
