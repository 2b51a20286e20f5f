namespace Pipeline.Actors.Admission;

/// <summary>
/// The KV memory budget of one host: the bytes admitted requests have reserved for their KV
/// caches, and the requests waiting, first come first served, for room. The tokenize actor
/// reserves before a request goes on to prefill; the reservation is released where the request's
/// cache is (<see cref="Sequence.ReleaseCache"/>). The host owns it, so it outlives a pipeline
/// that faults and is replaced, as <c>KvMemoryAccount</c> does.
/// </summary>
/// <remarks>
/// Strictly FIFO: a request that fits does not pass one that waits, so a large request is never
/// starved by a stream of small ones. Waiting is asynchronous and cancellable; a waiter cancelled
/// at the head of the queue lets the ones behind it through at once.
/// Why a lock and not an actor: this is a counting semaphore, not a stage. Reservations are taken
/// by the tokenize workers and given back by whichever actor ends a request (prefill, sample,
/// decode, or the wiring after an abort), often from a Dispose that cannot await a reply; the
/// queue and the count must change together. The lock guards only that: a few list operations,
/// never an await, and no caller's code runs under it (grants complete asynchronously).
/// </remarks>
internal sealed class KvBudget
{
    private readonly Lock _gate = new();
    private readonly LinkedList<Waiter> _waiting = [];
    private long _reserved;
    private long _peakReserved;
    private long _waits;
    private int _waitingCount; // _waiting.Count, readable without the gate

    public KvBudget(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        Bytes = bytes;
    }

    /// <summary>The whole budget.</summary>
    public long Bytes { get; }

    /// <summary>Bytes reserved now by admitted requests.</summary>
    public long ReservedBytes => Interlocked.Read(ref _reserved);

    /// <summary>The most bytes ever reserved at once (never above <see cref="Bytes"/>).</summary>
    public long PeakReservedBytes => Interlocked.Read(ref _peakReserved);

    /// <summary>Reservations that had to wait for room, since the host started.</summary>
    public long Waits => Interlocked.Read(ref _waits);

    /// <summary>Requests waiting for room now.</summary>
    public int Waiting => Volatile.Read(ref _waitingCount);

    /// <summary>
    /// Reserves <paramref name="bytes"/> (at most <see cref="Bytes"/>), at once when there is room
    /// and nobody waits, else once every earlier waiter is served and room has been released.
    /// Throws <see cref="OperationCanceledException"/> when cancelled while waiting, having reserved nothing.
    /// </summary>
    public ValueTask<KvReservation> ReserveAsync(long bytes, CancellationToken cancellation)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, Bytes);
        cancellation.ThrowIfCancellationRequested();
        LinkedListNode<Waiter> node;
        lock (_gate)
        {
            if (_waiting.Count == 0 && _reserved + bytes <= Bytes) return ValueTask.FromResult(Grant(bytes));
            node = _waiting.AddLast(new Waiter(bytes));
            _waitingCount = _waiting.Count;
            Interlocked.Increment(ref _waits);
        }
        return new ValueTask<KvReservation>(WaitAsync(node, cancellation));
    }

    private async Task<KvReservation> WaitAsync(LinkedListNode<Waiter> node, CancellationToken cancellation)
    {
        await using (cancellation.Register(() => Withdraw(node, cancellation)))
            return await node.Value.Granted.Task.ConfigureAwait(false);
    }

    /// <summary>A waiter gave up: it leaves the queue unless it was served first (then it keeps its reservation).</summary>
    private void Withdraw(LinkedListNode<Waiter> node, CancellationToken cancellation)
    {
        lock (_gate)
        {
            if (node.List is null) return;
            _waiting.Remove(node);
            _waitingCount = _waiting.Count;
            node.Value.Granted.TrySetCanceled(cancellation);
            // It may have been the head that the others waited behind.
            GrantWaiting();
        }
    }

    internal void Release(long bytes)
    {
        lock (_gate)
        {
            Interlocked.Add(ref _reserved, -bytes);
            GrantWaiting();
        }
    }

    // Called with the gate held.
    private void GrantWaiting()
    {
        while (_waiting.First is { } head && _reserved + head.Value.Bytes <= Bytes)
        {
            _waiting.RemoveFirst();
            _waitingCount = _waiting.Count;
            // Continuations run asynchronously: nobody's code runs under the gate.
            head.Value.Granted.TrySetResult(Grant(head.Value.Bytes));
        }
    }

    // Called with the gate held.
    private KvReservation Grant(long bytes)
    {
        long reserved = Interlocked.Add(ref _reserved, bytes);
        if (reserved > _peakReserved) Interlocked.Exchange(ref _peakReserved, reserved);
        return new KvReservation(this, bytes);
    }

    private sealed class Waiter(long bytes)
    {
        public long Bytes { get; } = bytes;
        public TaskCompletionSource<KvReservation> Granted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
