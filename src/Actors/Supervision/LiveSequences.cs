using System.Collections.Concurrent;

namespace Pipeline.Actors.Supervision;

/// <summary>
/// Every request of one pipeline from admission until detokenize has delivered its end. Nobody
/// touches a sequence through this registry while the actors run (each sequence belongs to the
/// actor holding it); only after an abort, once every actor has stopped, does the wiring walk it
/// to release each remaining cache and fail each remaining request: the one place that guarantees
/// KV memory returns to zero and no caller waits forever after a fault.
/// </summary>
internal sealed class LiveSequences
{
    private readonly ConcurrentDictionary<long, Sequence> _live = new();

    public int Count => _live.Count;

    public void Admitted(Sequence sequence)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        _live[sequence.Id] = sequence;
    }

    /// <summary>The request's end (result or error) reached its caller, or it never entered the pipeline.</summary>
    public void Ended(long requestId) => _live.TryRemove(requestId, out _);

    /// <summary>
    /// After an abort, with every actor stopped: releases each remaining cache and fails each
    /// remaining request, those the faulting actor held with its error, the rest as aborted.
    /// </summary>
    public void FailAll(ActorFault fault, Func<ActorFault, bool, Exception> error)
    {
        ArgumentNullException.ThrowIfNull(fault);
        ArgumentNullException.ThrowIfNull(error);
        foreach (var (id, sequence) in _live.ToArray())
        {
            sequence.ReleaseCache();
            _live.TryRemove(id, out _);
            try
            {
                sequence.Request.Sink.Failed(error(fault, fault.Held.Contains(id)));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A sink that throws even on its failure has nobody left to tell; the cache is free.
            }
        }
    }
}
