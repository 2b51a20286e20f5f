using Pipeline.Inference.Models;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// One float16 prefill call's presents, kept where the model ran: every layer's keys and values
/// ([rows, kv_heads, width, head_dim] each, slices K0, V0, K1, ... as a resident pool lays out its
/// parts). Each row's cache counts its prompt's positions as held here (<see cref="KvCache.AdvanceHeld"/>);
/// a resident pool takes them with one copy on the device (<see cref="CopyRowTo"/>), and anything else
/// that reads the cache gets them written back. The block goes back to its shelf when every row has let
/// go (taken by a pool, written back, or its cache disposed), so no memory is freed while a CUDA graph
/// may be capturing.
/// </summary>
/// <remarks>
/// Written by the prefill call on one thread, then read by whoever holds each row's cache after the
/// hand-off (the caches travel by message); rows let go on any thread, so the count of rows still
/// held is the one thing changed concurrently (Interlocked).
/// </remarks>
internal sealed unsafe class PrefillBlock : IHeldPositions
{
    private readonly PrefillBlockShelf _shelf;
    private readonly Dictionary<KvCache, int> _rowOf = new(ReferenceEqualityComparer.Instance);
    private int _held;

    public PrefillBlock(PrefillBlockShelf shelf)
    {
        _shelf = shelf;
        Pointer = shelf.Memory.Allocate(shelf.BlockBytes);
    }

    /// <summary>Where the presents are: the prefill call's outputs are bound here.</summary>
    public nint Pointer { get; }

    private LlamaConfig Config => _shelf.Config;
    private long HeadBytes => (long)_shelf.Width * Config.HeadDim * sizeof(ushort);
    private long SliceBytes => _shelf.Rows * Config.KvHeads * HeadBytes;

    /// <summary>The bytes of layer-slice <paramref name="slice"/> (2·layer + 0 for keys, + 1 for values), all rows.</summary>
    public nint Slice(int slice) => Pointer + (nint)(slice * SliceBytes);

    /// <summary>
    /// After the call: row <paramref name="row"/>'s cache (empty so far) holds its <paramref name="count"/>
    /// prompt positions here. Called on the prefill thread for every real row before the caches move on.
    /// </summary>
    public void Hold(KvCache cache, int row, int count)
    {
        if (cache.Length != 0) throw new InvalidOperationException("a prefill block holds a prompt's first positions only");
        cache.AdvanceHeld(count, this);
        _rowOf.Add(cache, row);
        _held++;
    }

    /// <summary>
    /// Copies <paramref name="cache"/>'s positions into a float16 slot laid out [kv_heads, stride,
    /// head_dim] per slice, slices <paramref name="slicePitch"/> apart; then the slot's owner takes
    /// them over (<see cref="KvCache.TransferHeld"/>).
    /// </summary>
    public void CopyRowTo(KvCache cache, DeviceMemory memory, nint slot, long rowPitch, long slicePitch)
    {
        int row = _rowOf[cache], count = cache.Length;
        memory.Copy3D(slot, rowPitch, slicePitch, Slice(0) + (nint)(row * Config.KvHeads * HeadBytes), HeadBytes, SliceBytes,
            (long)count * Config.HeadDim * sizeof(ushort), Config.KvHeads, 2L * Config.Layers);
    }

    /// <summary>Whether <paramref name="memory"/> can copy from this block (the same device memory, float16 slots).</summary>
    public bool Serves(DeviceMemory memory) => ReferenceEquals(memory, _shelf.Memory);

    public void WriteBack(KvCache cache)
    {
        if (cache.IsDisposed) return;
        var c = Config;
        int row = _rowOf[cache], count = cache.Length - cache.HostLength, hd = c.HeadDim, kvh = c.KvHeads;
        if (cache.HostLength != 0) throw new InvalidOperationException("a prefill block's cache gained host positions before its prompt's");
        // Rare (a prompt longer than one chunk, a test reading the cache): one download per head.
        int perLayer = kvh * count * hd;
        var half = new Half[2 * c.Layers * perLayer];
        var widened = new float[2 * perLayer];
        fixed (Half* host = half)
        {
            for (int slice = 0; slice < 2 * c.Layers; slice++)
                for (int h = 0; h < kvh; h++)
                    _shelf.Memory.Download(host + ((long)slice * kvh + h) * count * hd, Slice(slice) + (nint)((row * kvh + h) * HeadBytes), (long)count * hd * sizeof(ushort));
        }
        for (int l = 0; l < c.Layers; l++)
        {
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(half.AsSpan(2 * l * perLayer, perLayer), widened.AsSpan(0, perLayer));
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(half.AsSpan((2 * l + 1) * perLayer, perLayer), widened.AsSpan(perLayer, perLayer));
            cache.WriteHeld(l, widened.AsSpan(0, perLayer), widened.AsSpan(perLayer, perLayer), l == c.Layers - 1);
        }
        Drop(cache);
    }

    public void Drop(KvCache cache)
    {
        if (Interlocked.Decrement(ref _held) == 0) _shelf.Return(this);
    }

    /// <summary>Rows holding positions here now (0: the caller gives the block back itself).</summary>
    public int Held => Volatile.Read(ref _held);

    /// <summary>Ready for another call: no row holds anything here.</summary>
    internal void Reset() => _rowOf.Clear();

    internal void Free() => _shelf.Memory.Free(Pointer);
}
