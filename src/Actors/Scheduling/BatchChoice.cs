namespace Pipeline.Actors.Scheduling;

/// <summary>Applies a scheduling hook's batch choice to an actor's ready list.</summary>
internal static class BatchChoice
{
    /// <summary>Splits <paramref name="ready"/> into the chosen batch (in the hook's order) and the rest (in their order).</summary>
    public static (List<Sequence> Batch, List<Sequence> Waiting) Split(ISchedulingHook hook, HandOff kind, List<Sequence> ready)
    {
        var chosen = hook.FormBatch(kind, ready.Select(s => s.Id).ToArray());
        var taken = new bool[ready.Count];
        var batch = new List<Sequence>(chosen.Count);
        foreach (var index in chosen)
        {
            if (index < 0 || index >= ready.Count || taken[index])
                throw new InvalidOperationException($"scheduling hook chose index {index} of {ready.Count} ready sequences twice or out of range");
            taken[index] = true;
            batch.Add(ready[index]);
        }
        if (batch.Count == 0) throw new InvalidOperationException("scheduling hook chose an empty batch");
        var rest = new List<Sequence>(ready.Count - batch.Count);
        for (int i = 0; i < ready.Count; i++) if (!taken[i]) rest.Add(ready[i]);
        return (batch, rest);
    }
}
