namespace Pipeline.Actors.Supervision;

/// <summary>
/// The fault boundary shared by the actors of one pipeline. Each actor catches whatever escapes
/// its loop (or its message handler) in exactly one place and reports it here; the first report
/// wins and aborts the pipeline: <see cref="Abort"/> is cancelled, which every actor's waits and
/// writes observe, so every actor stops. Reports that arrive once the abort is under way are its
/// consequences (a closed channel, a cancelled wait), not faults of their own.
/// The boundary only records and stops; the host decides what happens next (restart or stay
/// faulted), and the wiring fails the requests that were in flight.
/// </summary>
internal sealed class FaultBoundary : IDisposable
{
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource<ActorFault> _fault = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationToken _token;

    public FaultBoundary() => _token = _abort.Token;

    /// <summary>Cancelled when the pipeline aborts (after a fault); every actor's waits use it. Readable after disposal.</summary>
    public CancellationToken Abort => _token;

    /// <summary>Completes with the first fault; never completes for a pipeline that stops normally.</summary>
    public Task<ActorFault> Faulted => _fault.Task;

    public bool IsAborting => _token.IsCancellationRequested;

    /// <summary>An actor threw outside its filters while holding <paramref name="held"/>.</summary>
    public void Report(ActorName actor, Exception error, IEnumerable<long> held)
    {
        ArgumentNullException.ThrowIfNull(error);
        ArgumentNullException.ThrowIfNull(held);
        if (_abort.IsCancellationRequested) return;
        if (!_fault.TrySetResult(new ActorFault(actor, error, held.ToHashSet()))) return;
        try { _abort.Cancel(); }
        catch (ObjectDisposedException) { } // the pipeline had already stopped: nothing left to abort
    }

    public void Dispose() => _abort.Dispose();
}
