using Pipeline.Inference.Runtime;

namespace Pipeline.Actors.Scheduling;

/// <summary>
/// Some of the decode actor's running sequences, stepped together: one model call (on a resident
/// pool, one part of the fixed shape), with a workspace of its own, so that its pasts and logits stay
/// where they are while sample draws from them and another lane's call runs.
/// </summary>
internal sealed class DecodeLane(int rows, ISchedulingHook hook) : IDisposable
{
    /// <summary>Who is in the lane, up to a call's rows.</summary>
    public DecodeBatch Batch { get; } = new(rows, hook);

    /// <summary>The lane's model-call buffers and (decoding on a device) its resident pool.</summary>
    public StepWorkspace Workspace { get; } = new();

    /// <summary>Whether the lane's call is running now.</summary>
    public bool Calling { get; set; }

    /// <summary>Messages of the lane's last call that sample has not answered yet.</summary>
    public int WithSample { get; set; }

    /// <summary>
    /// A lane is stepped again only once its last call is answered: its rows need their new tokens,
    /// and the call would overwrite the logits sample reads.
    /// </summary>
    public bool Busy => Calling || WithSample > 0;

    public void Dispose() => Workspace.Dispose();
}
