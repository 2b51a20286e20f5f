using System.Diagnostics;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// Where resident decode calls spend their time, summed over every pool of a model: placing rows
/// (and uploading the sequences new to a slot), setting a part's inputs and waiting for the copies
/// before the call, the call itself (to its outputs being ready), bringing the logits back, and
/// appending the new positions to the host caches. The bench reports it per step, to say what a
/// decode call is made of (docs/PERFORMANCE.md). Pools of different workspaces may add at once.
/// Uploads are split into host work (gathering and narrowing a cache into the pinned stage) and
/// device copies; prefill calls on the same model into the model's run and the host copies after it
/// (their presents appended to the caches), since what a prefill costs bounds how fast a batch fills.
/// </summary>
internal sealed class ResidentPhaseTimes
{
    private long _place, _inputs, _run, _logits, _append, _partCalls, _uploads;
    private long _uploadHost, _uploadCopies, _rents, _writeBacks, _writeBackCount, _prefillRun, _prefillCopies, _prefillCalls;

    public void AddUpload(long hostTicks, long copyTicks)
    {
        Interlocked.Add(ref _uploadHost, hostTicks);
        Interlocked.Add(ref _uploadCopies, copyTicks);
    }

    public void AddRent(long ticks) => Interlocked.Add(ref _rents, ticks);

    public void AddWriteBack(long ticks)
    {
        Interlocked.Add(ref _writeBacks, ticks);
        Interlocked.Increment(ref _writeBackCount);
    }

    public void AddPrefill(long runTicks, long copyTicks)
    {
        Interlocked.Add(ref _prefillRun, runTicks);
        Interlocked.Add(ref _prefillCopies, copyTicks);
        Interlocked.Increment(ref _prefillCalls);
    }

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
        Interlocked.Read(ref _partCalls), Interlocked.Read(ref _uploads))
    {
        UploadHostMs = Ms(ref _uploadHost), UploadCopiesMs = Ms(ref _uploadCopies), RentMs = Ms(ref _rents),
        WriteBackMs = Ms(ref _writeBacks), WriteBacks = Interlocked.Read(ref _writeBackCount),
        PrefillRunMs = Ms(ref _prefillRun), PrefillCopiesMs = Ms(ref _prefillCopies), PrefillCalls = Interlocked.Read(ref _prefillCalls),
    };

    private static double Ms(ref long ticks) => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref ticks)).TotalMilliseconds;

    /// <summary>Totals in milliseconds since the model loaded; subtract two to get a run's.</summary>
    public sealed record Snapshot(double PlaceMs, double InputsMs, double RunMs, double LogitsMs, double AppendMs, long PartCalls, long Uploads)
    {
        public double UploadHostMs { get; init; }
        public double UploadCopiesMs { get; init; }
        public double RentMs { get; init; }
        public double WriteBackMs { get; init; }
        public long WriteBacks { get; init; }
        public double PrefillRunMs { get; init; }
        public double PrefillCopiesMs { get; init; }
        public long PrefillCalls { get; init; }

        public static Snapshot operator -(Snapshot a, Snapshot b) => new(a.PlaceMs - b.PlaceMs, a.InputsMs - b.InputsMs, a.RunMs - b.RunMs,
            a.LogitsMs - b.LogitsMs, a.AppendMs - b.AppendMs, a.PartCalls - b.PartCalls, a.Uploads - b.Uploads)
        {
            UploadHostMs = a.UploadHostMs - b.UploadHostMs, UploadCopiesMs = a.UploadCopiesMs - b.UploadCopiesMs, RentMs = a.RentMs - b.RentMs,
            WriteBackMs = a.WriteBackMs - b.WriteBackMs, WriteBacks = a.WriteBacks - b.WriteBacks,
            PrefillRunMs = a.PrefillRunMs - b.PrefillRunMs, PrefillCopiesMs = a.PrefillCopiesMs - b.PrefillCopiesMs, PrefillCalls = a.PrefillCalls - b.PrefillCalls,
        };
    }
}
