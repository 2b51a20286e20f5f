using System.Diagnostics;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// Where resident decode calls spend their time, summed over every pool of a model: placing rows
/// (and uploading the sequences new to a slot), setting a part's inputs and waiting for the copies
/// before the call, the call itself (to its outputs being ready), bringing the logits back, and
/// appending the new positions to the host caches. The bench reports it per step, to say what a
/// decode call is made of (docs/PERFORMANCE.md). Pools of different workspaces may add at once.
/// </summary>
internal sealed class ResidentPhaseTimes
{
    private long _place, _inputs, _run, _logits, _append, _partCalls, _uploads;

    public void AddPlace(long ticks, long uploads)
    {
        Interlocked.Add(ref _place, ticks);
        Interlocked.Add(ref _uploads, uploads);
    }

    public void AddInputs(long ticks) => Interlocked.Add(ref _inputs, ticks);

    public void AddRun(long ticks)
    {
        Interlocked.Add(ref _run, ticks);
        Interlocked.Increment(ref _partCalls);
    }

    public void AddLogits(long ticks) => Interlocked.Add(ref _logits, ticks);
    public void AddAppend(long ticks) => Interlocked.Add(ref _append, ticks);

    public Snapshot Now() => new(Ms(ref _place), Ms(ref _inputs), Ms(ref _run), Ms(ref _logits), Ms(ref _append),
        Interlocked.Read(ref _partCalls), Interlocked.Read(ref _uploads));

    private static double Ms(ref long ticks) => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref ticks)).TotalMilliseconds;

    /// <summary>Totals in milliseconds since the model loaded; subtract two to get a run's.</summary>
    public sealed record Snapshot(double PlaceMs, double InputsMs, double RunMs, double LogitsMs, double AppendMs, long PartCalls, long Uploads)
    {
        public static Snapshot operator -(Snapshot a, Snapshot b) => new(a.PlaceMs - b.PlaceMs, a.InputsMs - b.InputsMs, a.RunMs - b.RunMs,
            a.LogitsMs - b.LogitsMs, a.AppendMs - b.AppendMs, a.PartCalls - b.PartCalls, a.Uploads - b.Uploads);
    }
}
