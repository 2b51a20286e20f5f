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
/// positions written, never its whole past again. Decoding on GroupQueryAttention the staged past is
/// the only copy of its rows' positions (<see cref="StageHeld"/>): each cache counts them as held
/// here and gets them back when read (<see cref="WriteBack"/>).
/// </summary>
/// <remarks>
/// Memory is bounded by the recent need, not kept at a past peak: every buffer is a
/// <see cref="ReusableBuffer{T}"/>, and the staged past is reused (re-laid out in place) when its
/// stride changes rather than allocated anew. After a big batch the workspace comes back, within
/// two windows of <see cref="ReusableBuffer{T}.Window"/> calls, to at most
/// <see cref="ReusableBuffer{T}.ShrinkFactor"/> times what the batches that follow need.
/// </remarks>
internal sealed class StepWorkspace : IDisposable, IHeldPositions
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

    /// <summary>Rows whose whole past <see cref="Stage"/> or <see cref="StageHeld"/> has copied (from a cache: a joining sequence; or from another row, or every row after a re-layout).</summary>
    internal long RowsCopied { get; private set; }

    // Whether the staged rows may hold positions their caches do not (StageHeld, HoldAll).
    private bool _holds;
    private LlamaConfig? _config;
    // Per step of StageHeld: the staged row each row's past is in now (-1: only its cache has it).
    private int[] _from = [];
    // The staged arrays a re-layout copies from, per layer; rows moving to a later row, set aside.
    private float[][] _oldKeys = [];
    private float[][] _oldValues = [];
    private readonly ReusableBuffer<float> _moving = new();

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
        if (_holds)
        {
            // The rows this workspace kept for decoding go back to their caches: this call copies from there.
            Forget();
            _holds = false;
        }
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

    /// <summary>
    /// Stages a decode call whose rows' positions this workspace keeps (<see cref="HoldAfterCall"/>):
    /// a row whose past is staged already stays, or moves within the staged past when its row changed;
    /// only a joining sequence's past is copied from its cache. Sequences held here that sit this call
    /// out are written back to their caches first (their rows may be taken). A new
    /// <paramref name="stride"/>, or arrays too small for the batch, lay every row out again in new
    /// arrays, copied from the old ones. The stride's tail is never cleared: the kernel reads each
    /// row's own length only.
    /// </summary>
    internal void StageHeld(IReadOnlyList<SequenceStep> rows, int stride, LlamaConfig c)
    {
        if (!_holds) Forget(); // what a copying call staged may be stale: rows are copied afresh
        _holds = true;
        _config = c;
        int batch = rows.Count, kvh = c.KvHeads, hd = c.HeadDim, layers = c.Layers;
        long size = (long)batch * kvh * stride * hd;
        if (size > int.MaxValue) throw new InvalidOperationException("staged past exceeds 2^31 floats; lower the batch size");
        if (_from.Length < batch) _from = new int[batch];
        for (int b = 0; b < batch; b++) _from[b] = StagedRow(rows[b].Cache);
        for (int s = 0; s < _rowCache.Length; s++)
        {
            if (_rowCache[s] is not { } occupant || Array.IndexOf(_from, s, 0, batch) >= 0) continue;
            if (IsHeldHere(occupant)) WriteBackOrLose(occupant);
            _rowCache[s] = null;
        }

        if (_keys.Length != layers)
        {
            _keys = Layers(layers);
            _values = Layers(layers);
        }
        if (_oldKeys.Length != layers)
        {
            _oldKeys = new float[layers][];
            _oldValues = new float[layers][];
        }
        int oldStride = PastStride;
        bool relaid = stride != oldStride;
        for (int l = 0; l < layers; l++)
        {
            _oldKeys[l] = _keys[l].Array;
            _oldValues[l] = _values[l].Array;
            if (stride != oldStride)
            {
                // A new stride moves every row: new arrays, so that the old ones can be read meanwhile.
                _keys[l] = new ReusableBuffer<float>();
                _values[l] = new ReusableBuffer<float>();
            }
            _keys[l].Get((int)size, out bool k);
            _values[l].Get((int)size, out bool v);
            relaid |= k | v;
        }
        PastStride = stride;
        if (batch > _rowCache.Length)
        {
            Array.Resize(ref _rowCache, batch);
            Array.Resize(ref _rowLength, batch);
        }

        if (relaid)
        {
            for (int l = 0; l < layers; l++)
                if (ReferenceEquals(_oldKeys[l], _keys[l].Array) && _oldKeys[l].Length > 0)
                    throw new InvalidOperationException("staged layers were reallocated out of step");
            for (int b = 0; b < batch; b++)
            {
                if (_from[b] < 0) CopyFromCache(rows[b].Cache, b);
                else CopyRow(_oldKeys, _oldValues, _from[b], oldStride, b, rows[b].Cache.Length);
            }
        }
        else
        {
            // In place: rows moving to a later row are set aside first (an earlier one may take their
            // row), then rows are written in order, so a row moving to an earlier one is read before
            // its own row is written.
            int rowFloats = kvh * stride * hd, aside = 0;
            for (int b = 0; b < batch; b++) if (_from[b] >= 0 && _from[b] < b) aside++;
            var moving = aside == 0 ? [] : _moving.Get(aside * 2 * layers * rowFloats);
            int slot = 0;
            for (int b = 0; b < batch; b++)
            {
                if (_from[b] < 0 || _from[b] >= b) continue;
                for (int l = 0; l < layers; l++)
                {
                    _keys[l].Array.AsSpan(_from[b] * rowFloats, rowFloats).CopyTo(moving.AsSpan((slot * 2 * layers + 2 * l) * rowFloats));
                    _values[l].Array.AsSpan(_from[b] * rowFloats, rowFloats).CopyTo(moving.AsSpan((slot * 2 * layers + 2 * l + 1) * rowFloats));
                }
                slot++;
            }
            slot = 0;
            for (int b = 0; b < batch; b++)
            {
                int from = _from[b];
                if (from == b) continue;
                if (from < 0) CopyFromCache(rows[b].Cache, b);
                else if (from > b) CopyRow(_oldKeys, _oldValues, from, stride, b, rows[b].Cache.Length);
                else
                {
                    for (int l = 0; l < layers; l++)
                    {
                        moving.AsSpan((slot * 2 * layers + 2 * l) * rowFloats, rowFloats).CopyTo(_keys[l].Array.AsSpan(b * rowFloats));
                        moving.AsSpan((slot * 2 * layers + 2 * l + 1) * rowFloats, rowFloats).CopyTo(_values[l].Array.AsSpan(b * rowFloats));
                    }
                    slot++;
                    RowsCopied++;
                }
            }
        }
        for (int b = 0; b < batch; b++)
        {
            _rowCache[b] = rows[b].Cache;
            _rowLength[b] = rows[b].Cache.Length;
        }
        for (int s = batch; s < _rowCache.Length; s++) _rowCache[s] = null;
        for (int l = 0; l < layers; l++) _oldKeys[l] = _oldValues[l] = [];
    }

    /// <summary>
    /// After a call staged by <see cref="StageHeld"/>: the kernel wrote each row's new positions
    /// into its staged row, after its past, so the workspace holds every position of every row and
    /// each cache counts them as held here (<see cref="KvCache.HoldAll"/>), its own arrays given back.
    /// </summary>
    internal void HoldAfterCall(IReadOnlyList<SequenceStep> rows)
    {
        for (int b = 0; b < rows.Count; b++)
        {
            rows[b].Cache.HoldAll(rows[b].Tokens.Length, this);
            _rowLength[b] = rows[b].Cache.Length;
        }
    }

    /// <summary>Writes a held cache's positions back from its staged row, on the thread that reads the cache (the workspace's owner: only its calls read such a cache).</summary>
    public void WriteBack(KvCache cache)
    {
        if (cache.IsDisposed) return;
        int row = Array.IndexOf(_rowCache, cache);
        if (row < 0 || _config is not { } c || _rowLength[row] != cache.Length)
            throw new InvalidOperationException("a cache's held positions are not in this workspace");
        int hd = c.HeadDim, pitch = PastStride * hd, from = cache.HostLength;
        int start = (row * c.KvHeads * PastStride + from) * hd;
        for (int l = 0; l < c.Layers; l++)
            cache.WriteHeld(l, _keys[l].Array.AsSpan(start), _values[l].Array.AsSpan(start), pitch, l == c.Layers - 1);
    }

    private bool IsHeldHere(KvCache cache) => !cache.IsDisposed && ReferenceEquals(cache.Holder, this);

    // The staged row holding all of cache's positions now, or -1.
    private int StagedRow(KvCache cache)
    {
        for (int s = 0; s < _rowCache.Length; s++)
            if (ReferenceEquals(_rowCache[s], cache))
                return _rowLength[s] == cache.Length && (cache.Holder is null || IsHeldHere(cache)) ? s : -1;
        return -1;
    }

    private static void WriteBackOrLose(KvCache cache)
    {
        try
        {
            cache.Materialize();
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            cache.LoseHeld($"the decode workspace could not write them back ({e.Message})");
        }
    }

    private void CopyFromCache(KvCache cache, int row)
    {
        var c = _config!;
        int kvh = c.KvHeads, hd = c.HeadDim;
        for (int l = 0; l < c.Layers; l++)
            for (int h = 0; h < kvh; h++)
            {
                int start = (row * kvh + h) * PastStride * hd;
                cache.Keys(l, h).CopyTo(_keys[l].Array.AsSpan(start));
                cache.Values(l, h).CopyTo(_values[l].Array.AsSpan(start));
            }
        RowsCopied++;
    }

    // Row `from` of the given arrays (laid out with `fromStride`) into row `row` of the staged past: `length` positions a head.
    private void CopyRow(float[][] keys, float[][] values, int from, int fromStride, int row, int length)
    {
        var c = _config!;
        int kvh = c.KvHeads, hd = c.HeadDim;
        for (int l = 0; l < c.Layers; l++)
            for (int h = 0; h < kvh; h++)
            {
                var src = keys[l].AsSpan((from * kvh + h) * fromStride * hd, length * hd);
                src.CopyTo(_keys[l].Array.AsSpan((row * kvh + h) * PastStride * hd));
                values[l].AsSpan((from * kvh + h) * fromStride * hd, length * hd).CopyTo(_values[l].Array.AsSpan((row * kvh + h) * PastStride * hd));
            }
        RowsCopied++;
    }

    /// <summary>Records that row <paramref name="row"/> now holds <paramref name="length"/> positions, after writing the new ones.</summary>
    internal void Advance(int row, int length) => _rowLength[row] = length;

    /// <summary>
    /// Forgets every row (after a failed call, say), so the next step copies afresh; positions held
    /// here go back to their caches first (a cache they cannot reach is marked lost, so that reading
    /// it throws rather than sees stale numbers).
    /// </summary>
    internal void Forget()
    {
        foreach (var cache in _rowCache)
            if (cache is not null && IsHeldHere(cache)) WriteBackOrLose(cache);
        System.Array.Clear(_rowCache);
        _resident?.Forget();
        if (_parts is not null) foreach (var part in _parts) part.Forget();
    }

}
