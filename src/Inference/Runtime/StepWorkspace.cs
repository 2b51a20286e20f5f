using Pipeline.Inference.Models;

namespace Pipeline.Inference.Runtime;

/// <summary>
/// An array reused from call to call by one owner. It grows by half again when a call needs more
/// than it holds; every <see cref="Window"/> calls it is cut down to the most that any of those
/// calls needed, if it holds more than <see cref="ShrinkFactor"/> times that. So it is sized to the
/// recent need, not to the largest ever seen, and a mix of big and small calls costs at most one
/// reallocation per window, not one per call. Contents are not kept across a reallocation.
/// </summary>
internal sealed class ReusableBuffer<T>
{
    /// <summary>Calls between two checks for shrinking.</summary>
    internal const int Window = 32;

    /// <summary>A buffer holding more than this many times the recent need is cut down to it.</summary>
    internal const int ShrinkFactor = 4;

    // Buffers at or below this many elements are never cut down: it would save nothing worth an allocation.
    private const int ShrinkFloor = 64 * 1024;

    private int _recentNeed;
    private int _calls;

    /// <summary>The array as it is now (possibly longer than the last call asked for).</summary>
    public T[] Array { get; private set; } = [];

    /// <summary>
    /// An array of at least <paramref name="length"/> elements. <paramref name="reallocated"/>
    /// says whether it is a new one (its contents are then all default).
    /// </summary>
    public T[] Get(int length, out bool reallocated)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        reallocated = false;
        _recentNeed = Math.Max(_recentNeed, length);
        if (Array.Length < length)
        {
            Array = new T[Math.Max(length, (int)Math.Min(int.MaxValue, Array.Length * 3L / 2))];
            reallocated = true;
        }
        if (++_calls >= Window)
        {
            if (Array.Length > ShrinkFloor && Array.Length > (long)ShrinkFactor * _recentNeed)
            {
                Array = new T[_recentNeed];
                reallocated = true;
            }
            _calls = 0;
            _recentNeed = 0;
        }
        return Array;
    }

    /// <inheritdoc cref="Get(int, out bool)"/>
    public T[] Get(int length) => Get(length, out _);

    public long Bytes => (long)Array.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
}

/// <summary>
/// Reusable buffers for model calls, owned by one calling actor (the model is shared; no buffer is
/// ever touched by two threads). It keeps the batch's past keys and values laid out as the model
/// wants them, [rows, kv_heads, past, head_dim], and remembers which cache fills each row and up
/// to where, so a step copies only what changed: a row whose sequence stayed in place gets its new
/// positions written, never its whole past again.
/// </summary>
/// <remarks>
/// Memory is bounded by the recent need, not kept at a past peak: every buffer is a
/// <see cref="ReusableBuffer{T}"/>, and the staged past is reused (re-laid out in place) when its
/// stride changes rather than allocated anew. After a big batch the workspace comes back, within
/// two windows of <see cref="ReusableBuffer{T}.Window"/> calls, to at most
/// <see cref="ReusableBuffer{T}.ShrinkFactor"/> times what the batches that follow need.
/// </remarks>
internal sealed class StepWorkspace : IDisposable
{
    internal ReusableBuffer<long> InputIds { get; } = new();
    internal ReusableBuffer<long> PositionIds { get; } = new();
    internal ReusableBuffer<long> AttentionMask { get; } = new();
    /// <summary>GroupQueryAttention graphs: seqlens_k per row, then total_sequence_length.</summary>
    internal ReusableBuffer<int> SeqlensK { get; } = new();
    internal ReusableBuffer<float> Logits { get; } = new();

    /// <summary>The one-hot [rows, 1, fed] that picks each row's position for the classifier.</summary>
    internal ReusableBuffer<float> LastPosition { get; } = new();

    /// <summary>The calling actor's [rows, vocab] logits of one call (the last fed token of each row).</summary>
    internal ReusableBuffer<float> RowLogits { get; } = new();

    /// <summary>The staged call's tensors over these buffers, kept while their shapes hold.</summary>
    internal OrtValueCache Tensors { get; } = new();

    /// <summary>A float16 resident pool's new positions, widened for the host caches.</summary>
    internal ReusableBuffer<float> ResidentScratch { get; } = new();

    // The model's outputs for one step, per layer: new keys and values [rows, kv_heads, fed, head_dim].
    private ReusableBuffer<float>[] _newKeys = [];
    private ReusableBuffer<float>[] _newValues = [];

    // The staged past, per layer.
    private ReusableBuffer<float>[] _keys = [];
    private ReusableBuffer<float>[] _values = [];
    private KvCache?[] _rowCache = [];
    private int[] _rowLength = [];

    /// <summary>Past positions per row in the staged layout: whole attention blocks (GroupQueryAttention: whole units of 16, see <c>DecoderModel.GroupQueryStride</c>).</summary>
    internal int PastStride { get; private set; }

    /// <summary>Rows whose whole past <see cref="Stage"/> has copied in from their caches (a joining sequence, or every row after a re-layout).</summary>
    internal long RowsCopied { get; private set; }

    // Workspaces of the further calls a batch larger than the model's fixed row count is split into.
    private List<StepWorkspace>? _parts;

    private Resident.ResidentKvPool? _resident;

    /// <summary>This workspace's resident pool (decode calls whose pasts stay on the device), made by <paramref name="create"/> on first use.</summary>
    internal Resident.ResidentKvPool ResidentPool(Func<Resident.ResidentKvPool> create) => _resident ??= create();

    /// <summary>Bytes the resident pool holds where the model runs (GPU memory on CUDA); not in <see cref="HeldBytes"/>.</summary>
    internal long ResidentBytes => _resident?.Bytes ?? 0;

    /// <summary>Frees the resident pool's memory and unpins the buffers the cached tensors hold (the buffers are the garbage collector's).</summary>
    public void Dispose()
    {
        Tensors.Dispose();
        _resident?.Dispose();
        _resident = null;
        if (_parts is not null) foreach (var part in _parts) part.Dispose();
    }

    /// <summary>The workspace of part <paramref name="index"/> of a split batch (part 0 is this one), kept across steps.</summary>
    internal StepWorkspace Part(int index)
    {
        if (index == 0) return this;
        _parts ??= [];
        while (_parts.Count < index) _parts.Add(new StepWorkspace());
        return _parts[index - 1];
    }


    /// <summary>Every byte the workspace holds now.</summary>
    internal long HeldBytes =>
        InputIds.Bytes + PositionIds.Bytes + AttentionMask.Bytes + SeqlensK.Bytes + LastPosition.Bytes + Logits.Bytes + RowLogits.Bytes + ResidentScratch.Bytes
        + _newKeys.Sum(b => b.Bytes) + _newValues.Sum(b => b.Bytes) + _keys.Sum(b => b.Bytes) + _values.Sum(b => b.Bytes)
        + (_parts?.Sum(p => p.HeldBytes) ?? 0);

    internal float[] NewKeys(int layer) => _newKeys[layer].Array;
    internal float[] NewValues(int layer) => _newValues[layer].Array;

    /// <summary>Makes every layer's new-key and new-value buffer hold at least <paramref name="size"/> floats.</summary>
    internal void EnsureOutputs(int layers, int size)
    {
        if (_newKeys.Length != layers)
        {
            _newKeys = Layers(layers);
            _newValues = Layers(layers);
        }
        for (int l = 0; l < layers; l++)
        {
            _newKeys[l].Get(size);
            _newValues[l].Get(size);
        }
    }

    private static ReusableBuffer<float>[] Layers(int layers)
    {
        var buffers = new ReusableBuffer<float>[layers];
        for (int l = 0; l < layers; l++) buffers[l] = new ReusableBuffer<float>();
        return buffers;
    }

    internal float[] Keys(int layer) => _keys[layer].Array;
    internal float[] Values(int layer) => _values[layer].Array;

    /// <summary>
    /// Lays out the past of <paramref name="rows"/> in order, with a stride of
    /// <paramref name="neededPast"/> positions (see <see cref="PastStride"/>), in buffers of at least
    /// <paramref name="paddedRows"/> rows (rows past the real ones are padding the caller masks).
    /// Most steps copy nothing but the rows whose sequence changed. <paramref name="clearTails"/>
    /// zeroes each copied row after its past (for a kernel that reads masked positions); a kernel
    /// that reads only each row's length leaves those pages untouched.
    /// </summary>
    internal void Stage(IReadOnlyList<SequenceStep> rows, int neededPast, LlamaConfig c, int paddedRows, bool clearTails = true)
    {
        int batch = rows.Count, kvh = c.KvHeads, hd = c.HeadDim;
        // Re-laid out when the past outgrows the stride (once every `block` steps of a growing
        // batch) or when the longest sequence left and the stride is a whole block too wide.
        if (neededPast != PastStride)
        {
            PastStride = neededPast;
            Forget(); // every row's place moved: each is copied afresh
        }
        long size = (long)Math.Max(batch, paddedRows) * kvh * PastStride * hd;
        if (size > int.MaxValue) throw new InvalidOperationException("staged past exceeds 2^31 floats; lower the batch size");
        if (_keys.Length != c.Layers)
        {
            _keys = Layers(c.Layers);
            _values = Layers(c.Layers);
        }
        bool moved = false;
        for (int l = 0; l < c.Layers; l++)
        {
            _keys[l].Get((int)size, out bool k);
            _values[l].Get((int)size, out bool v);
            moved |= k | v;
        }
        if (moved) Forget(); // a new array holds nothing yet: every row is copied into it
        if (batch > _rowCache.Length)
        {
            System.Array.Resize(ref _rowCache, batch);
            System.Array.Resize(ref _rowLength, batch);
        }
        for (int b = 0; b < batch; b++)
        {
            var cache = rows[b].Cache;
            if (ReferenceEquals(_rowCache[b], cache) && _rowLength[b] == cache.Length) continue;
            // A new sequence in this row, or the row's sequence moved: copy its whole past, and
            // (for a masked kernel) zero the rest of the row so that no stale number sits under the mask.
            for (int l = 0; l < c.Layers; l++)
                for (int h = 0; h < kvh; h++)
                {
                    int start = (b * kvh + h) * PastStride * hd;
                    var keys = _keys[l].Array.AsSpan(start, PastStride * hd);
                    var values = _values[l].Array.AsSpan(start, PastStride * hd);
                    cache.Keys(l, h).CopyTo(keys);
                    cache.Values(l, h).CopyTo(values);
                    if (!clearTails) continue;
                    keys[(cache.Length * hd)..].Clear();
                    values[(cache.Length * hd)..].Clear();
                }
            _rowCache[b] = cache;
            _rowLength[b] = cache.Length;
            RowsCopied++;
        }
    }

    /// <summary>Records that row <paramref name="row"/> now holds <paramref name="length"/> positions, after writing the new ones.</summary>
    internal void Advance(int row, int length) => _rowLength[row] = length;

    /// <summary>Forgets every row (after a failed call, say), so the next step copies afresh.</summary>
    internal void Forget()
    {
        System.Array.Clear(_rowCache);
        _resident?.Forget();
        if (_parts is not null) foreach (var part in _parts) part.Forget();
    }

}
