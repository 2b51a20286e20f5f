namespace Pipeline;

/// <summary>The admission queue is full and the host was told to reject rather than wait.</summary>
public sealed class PipelineBusyException(int capacity)
    : InvalidOperationException($"the pipeline is busy: {capacity} requests are already waiting; retry later")
{
    public int Capacity { get; } = capacity;
}
