namespace Pipeline.Actors;

/// <summary>Live figures of one pipeline, written by its actors and read by metrics.</summary>
internal sealed class PipelineCounters
{
    private long _active;
    private long _lastBatch;
    private long _tokens;
    private long _steps;
    private long _maxStallTicks;
    private long _promptsTokenized;
    private long _decodeRows;
    private long _decodeCallTicks;   // Stopwatch ticks
    private long _samplingTicks;     // Stopwatch ticks
    private long _prefillCalls;
    private long _prefillCallTicks;  // Stopwatch ticks
    private long _earlyRows;

    public long ActiveSequences => Interlocked.Read(ref _active);
    public long LastBatchSize => Interlocked.Read(ref _lastBatch);
    public long TokensGenerated => Interlocked.Read(ref _tokens);
    public long DecodeSteps => Interlocked.Read(ref _steps);
    /// <summary>Text prompts the tokenizer encoded (requests that came with ids, or were refused unread, do not count).</summary>
    public long PromptsTokenized => Interlocked.Read(ref _promptsTokenized);
    /// <summary>The longest time between two decode calls while sequences were active.</summary>
    public TimeSpan LongestDecodeGap => TimeSpan.FromTicks(Interlocked.Read(ref _maxStallTicks));

    /// <summary>Where model time went so far (sums; see <see cref="StepTimes"/>).</summary>
    public StepTimes Times => new(DecodeSteps, Interlocked.Read(ref _decodeRows),
        System.Diagnostics.Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _decodeCallTicks)),
        System.Diagnostics.Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _samplingTicks)),
        Interlocked.Read(ref _prefillCalls),
        System.Diagnostics.Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _prefillCallTicks)),
        Interlocked.Read(ref _earlyRows));

    internal void SequenceStarted() => Interlocked.Increment(ref _active);
    internal void SequenceEnded() => Interlocked.Decrement(ref _active);
    /// <summary>A decode step of <paramref name="batch"/> rows ran; its model call took <paramref name="callTicks"/> Stopwatch ticks.</summary>
    internal void StepRan(int batch, long callTicks)
    {
        Interlocked.Exchange(ref _lastBatch, batch);
        Interlocked.Add(ref _decodeRows, batch);
        Interlocked.Add(ref _decodeCallTicks, callTicks);
        Interlocked.Increment(ref _steps);
    }

    /// <summary>No decode call ran for <paramref name="ticks"/> Stopwatch ticks while sequences waited on sample.</summary>
    internal void StepSampled(long ticks) => Interlocked.Add(ref _samplingTicks, ticks);

    /// <summary><paramref name="rows"/> were drawn while another lane's call ran.</summary>
    internal void RowsSampledEarly(int rows) => Interlocked.Add(ref _earlyRows, rows);

    /// <summary>A prefill model call completed after <paramref name="ticks"/> Stopwatch ticks.</summary>
    internal void PrefillCallRan(long ticks) { Interlocked.Add(ref _prefillCallTicks, ticks); Interlocked.Increment(ref _prefillCalls); }
    internal void TokenGenerated() => Interlocked.Increment(ref _tokens);
    internal void PromptTokenized() => Interlocked.Increment(ref _promptsTokenized);
    internal void DecodeGap(TimeSpan gap) => Inference.Runtime.AtomicMax.Raise(ref _maxStallTicks, gap.Ticks);
}
