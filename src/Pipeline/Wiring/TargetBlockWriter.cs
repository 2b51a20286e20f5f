using System.Threading.Channels;
using System.Threading.Tasks.Dataflow;

namespace Pipeline.Wiring;

/// <summary>
/// A Dataflow block seen as a channel's writing end, so that the actors (and the scheduling
/// hook's <see cref="Actors.Scheduling.HandOffWriter{T}"/>) write to a Dataflow stage exactly as
/// they write to a channel: waiting while the block is full, failing once it has completed.
/// </summary>
internal sealed class TargetBlockWriter<T>(ITargetBlock<T> target) : ChannelWriter<T>
{
    public override bool TryWrite(T item) => target.Post(item);

    public override async ValueTask WriteAsync(T item, CancellationToken cancellationToken = default)
    {
        if (!await target.SendAsync(item, cancellationToken))
            throw new ChannelClosedException("the stage has completed and accepts no more messages");
    }

    // No actor waits for room on a Dataflow stage; say whether it still accepts messages.
    public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default)
        => ValueTask.FromResult(!target.Completion.IsCompleted);

    public override bool TryComplete(Exception? error = null)
    {
        if (error is null) target.Complete();
        else target.Fault(error);
        return true;
    }
}
