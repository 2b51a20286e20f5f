using System.Diagnostics;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// Where resident decode calls spend their time, summed over every pool of a model: placing rows
/// (and uploading the sequences new to a slot), setting a part's inputs and waiting for the copies
/// before the call, the call itself (to its outputs being ready), bringing the logits back, and
/// appending the new positions to the host caches. The bench reports it per step, to say what a
/// decode call is made of (docs/PERFORMANCE.md). Pools of different workspaces may add at once.
/// Uploads are split into host work (gathering and narrowing a cache into the pinned stage) and
/// device copies; prefill calls on the same model into the model's run and the host copies after it,
/// since what a prefill costs bounds how fast a batch fills.
/// </summary>
internal sealed class ResidentPhaseTimes
{
    // One counter per kind: stopwatch ticks for times, plain counts for the rest.
    private enum Counter { Place, Inputs, Run, Logits, Append, PartCalls, SmallCalls, Uploads, UploadHost, UploadCopies, Rents, WriteBacks, WriteBackCount, PrefillRun, PrefillCopies, PrefillCalls }

    private readonly long[] _counters = new long[Enum.GetValues<Counter>().Length];

    private void Add(Counter counter, long amount) => Interlocked.Add(ref _counters[(int)counter], amount);

    public void AddPlace(long ticks, long uploads)
    {
        Add(Counter.Place, ticks);
        Add(Counter.Uploads, uploads);
    }

    public void AddInputs(long ticks) => Add(Counter.Inputs, ticks);

    public void AddRun(long ticks, bool small = false)
    {
        Add(Counter.Run, ticks);
        Add(Counter.PartCalls, 1);
        if (small) Add(Counter.SmallCalls, 1);
    }

    public void AddLogits(long ticks) => Add(Counter.Logits, ticks);
    public void AddAppend(long ticks) => Add(Counter.Append, ticks);

    public void AddUpload(long hostTicks, long copyTicks)
    {
        Add(Counter.UploadHost, hostTicks);
        Add(Counter.UploadCopies, copyTicks);
    }

    public void AddRent(long ticks) => Add(Counter.Rents, ticks);

    public void AddWriteBack(long ticks)
    {
        Add(Counter.WriteBacks, ticks);
        Add(Counter.WriteBackCount, 1);
    }

    public void AddPrefill(long runTicks, long copyTicks)
    {
        Add(Counter.PrefillRun, runTicks);
        Add(Counter.PrefillCopies, copyTicks);
        Add(Counter.PrefillCalls, 1);
    }

    public Snapshot Now() => new(_counters.Select((_, i) => Interlocked.Read(ref _counters[i])).ToArray());

    /// <summary>Totals since the model loaded (times in milliseconds); subtract two to get a run's.</summary>
    public sealed class Snapshot
    {
        private readonly long[] _values;

        internal Snapshot(long[] values) => _values = values;

        private double Ms(Counter c) => Stopwatch.GetElapsedTime(0, _values[(int)c]).TotalMilliseconds;

        public double PlaceMs => Ms(Counter.Place);
        public double InputsMs => Ms(Counter.Inputs);
        public double RunMs => Ms(Counter.Run);
        public double LogitsMs => Ms(Counter.Logits);
        public double AppendMs => Ms(Counter.Append);
        public long PartCalls => _values[(int)Counter.PartCalls];
        /// <summary>Part calls that ran the small shape (<see cref="BatchShapes.SmallDecodeRows"/>).</summary>
        public long SmallCalls => _values[(int)Counter.SmallCalls];
        public long Uploads => _values[(int)Counter.Uploads];
        public double UploadHostMs => Ms(Counter.UploadHost);
        public double UploadCopiesMs => Ms(Counter.UploadCopies);
        public double RentMs => Ms(Counter.Rents);
        public double WriteBackMs => Ms(Counter.WriteBacks);
        public long WriteBacks => _values[(int)Counter.WriteBackCount];
        public double PrefillRunMs => Ms(Counter.PrefillRun);
        public double PrefillCopiesMs => Ms(Counter.PrefillCopies);
        public long PrefillCalls => _values[(int)Counter.PrefillCalls];

        public static Snapshot operator -(Snapshot a, Snapshot b) =>
            new(a._values.Zip(b._values, (x, y) => x - y).ToArray());
    }
}
