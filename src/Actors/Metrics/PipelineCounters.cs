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

    public long ActiveSequences => Interlocked.Read(ref _active);
    public long LastBatchSize => Interlocked.Read(ref _lastBatch);
    public long TokensGenerated => Interlocked.Read(ref _tokens);
    public long DecodeSteps => Interlocked.Read(ref _steps);
    /// <summary>Text prompts the tokenizer encoded (requests that came with ids, or were refused unread, do not count).</summary>
    public long PromptsTokenized => Interlocked.Read(ref _promptsTokenized);
    /// <summary>The longest a decode step waited between two steps while sequences were active.</summary>
    public TimeSpan LongestDecodeGap => TimeSpan.FromTicks(Interlocked.Read(ref _maxStallTicks));

    internal void SequenceStarted() => Interlocked.Increment(ref _active);
    internal void SequenceEnded() => Interlocked.Decrement(ref _active);
    internal void StepRan(int batch) { Interlocked.Exchange(ref _lastBatch, batch); Interlocked.Increment(ref _steps); }
    internal void TokenGenerated() => Interlocked.Increment(ref _tokens);
    internal void PromptTokenized() => Interlocked.Increment(ref _promptsTokenized);
    internal void DecodeGap(TimeSpan gap) => Inference.Runtime.AtomicMax.Raise(ref _maxStallTicks, gap.Ticks);
}
