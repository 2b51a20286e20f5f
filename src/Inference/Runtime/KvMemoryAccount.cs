namespace Pipeline.Inference.Runtime;

/// <summary>
/// Counts the bytes held by live KV caches of one host, and the peak. Caches add on growth and
/// subtract on dispose, so a host whose requests have all finished reads zero.
/// </summary>
internal sealed class KvMemoryAccount
{
    private long _bytes;
    private long _peak;
    private long _caches;

    public long Bytes => Interlocked.Read(ref _bytes);
    public long PeakBytes => Interlocked.Read(ref _peak);
    public long LiveCaches => Interlocked.Read(ref _caches);

    internal void Add(long bytes)
    {
        AtomicMax.Raise(ref _peak, Interlocked.Add(ref _bytes, bytes));
    }

    internal void Remove(long bytes) => Interlocked.Add(ref _bytes, -bytes);
    internal void CacheOpened() => Interlocked.Increment(ref _caches);
    internal void CacheClosed() => Interlocked.Decrement(ref _caches);
}
