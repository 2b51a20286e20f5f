using System.Threading.Channels;

namespace Pipeline.Inference.Runtime;

/// <summary>
/// The layer arrays of finished KV caches, kept for the next caches of the same capacity. Each
/// request's cache is a few megabytes per sequence (the 110M shape: 74 KB a position); made anew
/// for every request they were garbage the collector let pile up between full collections (a
/// served 110M shape's committed heap grew by ~100-300 MB under 16 concurrent requests), and
/// fresh memory costs ~11 us a page at first touch on this machine kind. Taken back here, a
/// steady load allocates no KV memory at all.
/// </summary>
/// <remarks>
/// One owner takes (the actor that makes caches: prefill); any actor gives back (a cache is
/// disposed wherever its sequence ends), through a channel, so the shelf itself is touched by its
/// owner alone. It keeps at most <see cref="MaxBytes"/>: a returned set that would pass it is left
/// to the garbage collector. Only exact capacities match (the pipeline makes each cache at its
/// request's reservation: prompt plus max_tokens), so requests of one shape reuse each other's.
/// </remarks>
internal sealed class KvArrayShelf
{
    private readonly Channel<Returned> _returned = Channel.CreateUnbounded<Returned>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<int, Stack<Returned>> _byCapacity = [];

    public KvArrayShelf(long maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        MaxBytes = maxBytes;
    }

    /// <summary>The most bytes the shelf keeps for reuse.</summary>
    public long MaxBytes { get; }

    /// <summary>Bytes on the shelf now (as of the owner's last take).</summary>
    public long Bytes { get; private set; }

    /// <summary>Caches whose arrays came from the shelf.</summary>
    public long Reused { get; private set; }

    /// <summary>Caches that asked and found nothing of their capacity.</summary>
    public long Missed { get; private set; }

    /// <summary>
    /// Gives a cache's arrays back (any thread): a disposed cache's, or one whose positions a holder
    /// keeps. The cache must never touch them again. Only the first <paramref name="written"/>
    /// positions of each head (<paramref name="headDim"/> floats a position) may be non-zero: the
    /// next taker clears those alone, and pages never written stay untouched.
    /// </summary>
    public void Return(float[][] keys, float[][] values, int capacity, int written, int headDim)
    {
        long floats = 0;
        foreach (var layer in keys) floats += layer.Length;
        _returned.Writer.TryWrite(new Returned(keys, values, capacity, 2 * floats * sizeof(float), Math.Min(written, capacity) * headDim, capacity * headDim));
    }

    /// <summary>
    /// Arrays for a cache of <paramref name="capacity"/> positions, zeroed as new ones are, or false
    /// when none is on the shelf (the caller allocates). Owner's thread only.
    /// </summary>
    public bool TryTake(int capacity, out float[][] keys, out float[][] values)
    {
        while (_returned.Reader.TryRead(out var back))
        {
            long bytes = back.Bytes;
            if (Bytes + bytes > MaxBytes) continue; // left to the garbage collector
            if (!_byCapacity.TryGetValue(back.Capacity, out var stack)) _byCapacity[back.Capacity] = stack = new Stack<Returned>();
            stack.Push(back);
            Bytes += bytes;
        }
        if (_byCapacity.TryGetValue(capacity, out var shelf) && shelf.TryPop(out var set))
        {
            Bytes -= set.Bytes;
            foreach (var layer in set.Keys) ClearWritten(layer, set);
            foreach (var layer in set.Values) ClearWritten(layer, set);
            (keys, values) = (set.Keys, set.Values);
            Reused++;
            return true;
        }
        (keys, values) = ([], []);
        Missed++;
        return false;
    }

    // Each head's region of a layer starts with the positions ever written; the rest is still zero.
    private static void ClearWritten(float[] layer, Returned set)
    {
        for (int start = 0; start < layer.Length; start += set.HeadFloats)
            layer.AsSpan(start, set.WrittenFloats).Clear();
    }

    private readonly record struct Returned(float[][] Keys, float[][] Values, int Capacity, long Bytes, int WrittenFloats, int HeadFloats);
}
