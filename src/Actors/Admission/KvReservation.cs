namespace Pipeline.Actors.Admission;

/// <summary>
/// Bytes of a host's <see cref="KvBudget"/> held for one request's KV cache. Disposing releases
/// them, once however often it is called: the request's sequence does so where it releases its
/// cache, on every path by which a request ends.
/// </summary>
internal sealed class KvReservation : IDisposable
{
    private readonly KvBudget _budget;
    private int _released;

    internal KvReservation(KvBudget budget, long bytes)
    {
        _budget = budget;
        Bytes = bytes;
    }

    public long Bytes { get; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0) _budget.Release(Bytes);
    }
}
