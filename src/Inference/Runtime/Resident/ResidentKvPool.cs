using Microsoft.ML.OnnxRuntime;
using Pipeline.Inference.Models;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// The decode actor's pasts kept where the model runs (GPU memory on CUDA), so a decode call reads
/// them in place instead of having every row's past staged and copied in. The pool is made of
/// parts of <see cref="RowsPerCall"/> slots, one model call each, laid out exactly as the graph's
/// past inputs ([rows, kv_heads, <see cref="Stride"/>, head_dim] per layer, keys and values) and
/// bound to them once. A sequence keeps its slot from step to step: it is uploaded from its host
/// cache once, when it first takes a slot, and after that a step writes only its new position into
/// the slot (a copy within the device) and brings that position back to the host cache.
/// </summary>
/// <remarks>
/// The host <see cref="KvCache"/> stays the record of a sequence's past (prefill writes it, clones
/// copy it, the KV budget counts it); the pool is a copy that a slot keeps only while its sequence
/// keeps decoding, so a sequence that leaves, fails or moves is simply uploaded again when it next
/// needs a slot. Positions of a slot past its sequence's length hold zeros or older numbers; the
/// attention mask hides them, so they never change a bit of the result (P6 on the resident path).
/// Owned by one actor's <see cref="StepWorkspace"/>: no two threads ever touch it.
/// </remarks>
internal sealed unsafe class ResidentKvPool : IDisposable
{
    private readonly ResidentShelf _shelf;
    private readonly DeviceMemory _memory;
    private readonly LlamaConfig _config;
    private readonly List<ResidentPart> _parts = [];
    private readonly Dictionary<KvCache, int> _slotOf = new(ReferenceEqualityComparer.Instance);
    private KvCache?[] _slotCache = [];
    private int[] _slotLength = [];
    private bool _disposed;

    /// <param name="shelf">The model's parts and their layout: a pool takes parts from it and gives them back when disposed.</param>
    public ResidentKvPool(ResidentShelf shelf)
    {
        _shelf = shelf;
        _memory = shelf.Memory;
        _config = shelf.Config;
        RowsPerCall = shelf.RowsPerCall;
        Stride = shelf.Stride;
    }

    /// <summary>Slots per part: the rows of every call.</summary>
    public int RowsPerCall { get; }

    /// <summary>Past positions per slot: the graph's past length under fixed shapes.</summary>
    public int Stride { get; }

    public int PartCount => _parts.Count;

    /// <summary>The decode graph attends with GroupQueryAttention (seqlens_k inputs, pasts written in place); see <see cref="ResidentShelf.GroupQuery"/>.</summary>
    public bool GroupQuery => _shelf.GroupQuery;

    /// <summary>Bytes of pool memory held (device memory on CUDA).</summary>
    public long Bytes => _parts.Count * _shelf.PartBytes;

    /// <summary>Sequences copied in whole from their host cache so far: once per sequence while batches keep their members.</summary>
    public long Uploads { get; private set; }

    private long SlotBytes => _shelf.SlotBytes;
    private long NewBytes => _shelf.NewBytes;

    /// <summary>The binding of part <paramref name="part"/>: every input and output bound for good, to the part's own memory.</summary>
    public OrtIoBinding Binding(int part) => _parts[part].Binding;

    /// <summary>The run options of part <paramref name="part"/>'s calls (its CUDA graph's id when graphs are on).</summary>
    public RunOptions RunOptions(int part) => _parts[part].RunOptions;

    /// <summary>Calls part <paramref name="part"/> has made (the first few warm up and capture its CUDA graph).</summary>
    public int Calls(int part) => _parts[part].Calls;

    /// <summary>Counts one call of part <paramref name="part"/>.</summary>
    public void Called(int part) => _parts[part].Calls++;

    /// <summary>Copies one call's ids and positions ([rows]) and attention mask ([rows, stride + 1]) into part <paramref name="part"/>'s inputs.</summary>
    public void SetInputs(int part, long[] ids, long[] positions, long[] mask)
    {
        var p = _parts[part];
        long rows = RowsPerCall * sizeof(long);
        fixed (long* i = ids) _memory.Upload(p.Ids, i, rows);
        fixed (long* q = positions) _memory.Upload(p.Positions, q, rows);
        fixed (long* m = mask) _memory.Upload(p.Mask, m, rows * (Stride + 1));
    }

    /// <summary>Copies one GroupQueryAttention call's ids and positions ([rows]) and each row's seqlens_k ([rows]: its past length) into part <paramref name="part"/>'s inputs.</summary>
    public void SetInputs(int part, long[] ids, long[] positions, int[] seqlens)
    {
        var p = _parts[part];
        long rows = RowsPerCall * sizeof(long);
        fixed (long* i = ids) _memory.Upload(p.Ids, i, rows);
        fixed (long* q = positions) _memory.Upload(p.Positions, q, rows);
        fixed (int* k = seqlens) _memory.Upload(p.Mask, k, RowsPerCall * sizeof(int));
    }

    /// <summary>
    /// Brings back the logits of <paramref name="members"/>' slots of part <paramref name="part"/>'s
    /// last call into their rows of <paramref name="destination"/> ([rows, vocab]): one download of
    /// the slots up to the highest one used (slots fill from the lowest), not one per row.
    /// </summary>
    public void GetLogits(int part, IReadOnlyList<int> members, int[] slots, Span<float> destination, StepWorkspace workspace)
    {
        int vocab = _config.VocabSize, highest = -1;
        foreach (int b in members) highest = Math.Max(highest, slots[b] % RowsPerCall);
        if (highest < 0) return;
        var all = workspace.ResidentScratch.Get((highest + 1) * vocab);
        fixed (float* d = all)
            _memory.Download(d, _parts[part].Logits, (long)(highest + 1) * vocab * sizeof(float));
        foreach (int b in members)
            all.AsSpan(slots[b] % RowsPerCall * vocab, vocab).CopyTo(destination.Slice(b * vocab, vocab));
    }

    /// <summary>
    /// Gives each row's sequence a slot and returns them (slot / <see cref="RowsPerCall"/> is the
    /// part). Sequences not among <paramref name="rows"/> lose their slots; a sequence new to the
    /// pool, or whose host cache changed since the pool last wrote it, is uploaded whole.
    /// </summary>
    public int[] Place(IReadOnlyList<SequenceStep> rows)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var present = new HashSet<KvCache>(ReferenceEqualityComparer.Instance);
        foreach (var row in rows)
            if (!present.Add(row.Cache)) throw new ArgumentException("a sequence appears twice in one decode call");
        for (int s = 0; s < _slotCache.Length; s++)
            if (_slotCache[s] is { } held && !present.Contains(held))
            {
                _slotOf.Remove(held);
                _slotCache[s] = null;
            }
        var slots = new int[rows.Count];
        int searchFrom = 0;
        for (int b = 0; b < rows.Count; b++)
        {
            var cache = rows[b].Cache;
            if (!_slotOf.TryGetValue(cache, out int slot))
            {
                slot = FreeSlot(ref searchFrom);
                _slotOf[cache] = slot;
                _slotCache[slot] = cache;
                Upload(slot, cache);
            }
            else if (_slotLength[slot] != cache.Length)
            {
                Upload(slot, cache);
            }
            slots[b] = slot;
        }
        return slots;
    }

    /// <summary>
    /// After part <paramref name="part"/>'s call: writes the new position of each of its rows
    /// (<paramref name="members"/>, indices into <paramref name="rows"/>) into its slot and appends it
    /// to the row's host cache, through <paramref name="workspace"/>'s new-key buffers.
    /// </summary>
    public void Append(int part, IReadOnlyList<SequenceStep> rows, IReadOnlyList<int> members, int[] slots, StepWorkspace workspace)
    {
        var c = _config;
        var p = _parts[part];
        int kvh = c.KvHeads, hd = c.HeadDim, layers = c.Layers;
        long pitch = (long)Stride * hd * _shelf.ElementBytes, position = hd * _shelf.ElementBytes;
        int newFloats = RowsPerCall * kvh * hd;
        // One copy per row for every layer's keys and values (slices K0, V0, K1, ... of the part's
        // blocks): rows of kv_heads, one position wide, at the row's length. The block graph's
        // outputs go into the slot; GroupQueryAttention wrote the slot itself, and the position is
        // gathered from there so that all of them come back in one download.
        foreach (int b in members)
        {
            int local = slots[b] % RowsPerCall, length = rows[b].Cache.Length;
            // A sequence at the context's last position has no further step to read it.
            if (length >= Stride) continue;
            nint inSlot = p.Pasts + (nint)(local * SlotBytes + length * position), inNews = p.News + (nint)(local * kvh * position);
            if (_shelf.GroupQuery)
                _memory.Copy3D(inNews, position, NewBytes, inSlot, pitch, RowsPerCall * SlotBytes, position, kvh, 2L * layers);
            else
                _memory.Copy3D(inSlot, pitch, RowsPerCall * SlotBytes, inNews, position, NewBytes, position, kvh, 2L * layers);
        }
        // Every layer's new positions come back in one download: the host caches stay the record.
        var all = workspace.ResidentScratch.Get(2 * layers * newFloats);
        if (_shelf.ElementBytes == sizeof(float))
        {
            fixed (float* d = all) _memory.Download(d, p.News, 2L * layers * NewBytes);
        }
        else
        {
            // Float16 in the pool, float32 in the host caches: widening is exact, so an upload
            // later narrows them back to the very bits the slot held.
            var halves = workspace.ResidentHalves.Get(2 * layers * newFloats);
            fixed (Half* d = halves) _memory.Download(d, p.News, 2L * layers * NewBytes);
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(halves.AsSpan(0, 2 * layers * newFloats), all);
        }
        for (int l = 0; l < layers; l++)
        {
            var keys = all.AsSpan(2 * l * newFloats, newFloats);
            var values = all.AsSpan((2 * l + 1) * newFloats, newFloats);
            foreach (int b in members)
                rows[b].Cache.Append(keys, values, l, slots[b] % RowsPerCall, 1, 0, 1, l == layers - 1);
        }
        foreach (int b in members) _slotLength[slots[b]] = rows[b].Cache.Length;
    }

    /// <summary>Waits for every copy queued so far (uploads, appends, inputs): before a call reads the pool.</summary>
    public void Synchronize() => _memory.Synchronize();

    /// <summary>Forgets every slot's sequence (after a failed call), so each is uploaded afresh next time.</summary>
    public void Forget()
    {
        _slotOf.Clear();
        Array.Clear(_slotCache);
    }

    private int FreeSlot(ref int searchFrom)
    {
        for (; searchFrom < _slotCache.Length; searchFrom++)
            if (_slotCache[searchFrom] is null) return searchFrom++;
        AddPart();
        return searchFrom++;
    }

    private void AddPart()
    {
        _parts.Add(_shelf.Rent());
        int slots = _parts.Count * RowsPerCall;
        Array.Resize(ref _slotCache, slots);
        Array.Resize(ref _slotLength, slots);
    }

    private void Upload(int slot, KvCache cache)
    {
        var p = _parts[slot / RowsPerCall];
        int local = slot % RowsPerCall, hd = _config.HeadDim, length = cache.Length;
        if (length > Stride) throw new InvalidOperationException($"a sequence of {length} positions does not fit the pool's {Stride}");
        long start = local * SlotBytes, position = hd * _shelf.ElementBytes;
        for (int l = 0; l < _config.Layers; l++)
        {
            // Zeros first, so no older sequence's numbers sit under the mask (they could not change a
            // bit, but a slot then holds what the staged path would have held).
            _memory.Zero(p.Keys[l] + (nint)start, SlotBytes);
            _memory.Zero(p.Values[l] + (nint)start, SlotBytes);
            if (length == 0) continue;
            UploadLayer(p.Keys[l] + (nint)start, cache.KeyLayer(l), cache.Capacity, length, position);
            UploadLayer(p.Values[l] + (nint)start, cache.ValueLayer(l), cache.Capacity, length, position);
        }
        _slotLength[slot] = length;
        Uploads++;
    }

    // One layer's keys or values of a sequence ([kv_heads, capacity, hd] floats on the host) into its
    // slot ([kv_heads, stride, hd]); a float16 pool gets them narrowed on the host first.
    private void UploadLayer(nint destination, ReadOnlySpan<float> layer, int capacity, int length, long position)
    {
        int kvh = _config.KvHeads, hd = _config.HeadDim;
        if (_shelf.ElementBytes == sizeof(float))
        {
            fixed (float* source = layer)
                _memory.Upload2D(destination, Stride * position, source, (long)capacity * hd * sizeof(float), length * position, kvh);
            return;
        }
        int perHead = length * hd;
        if (_halves.Length < kvh * perHead) _halves = new Half[kvh * perHead];
        for (int h = 0; h < kvh; h++)
            System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(layer.Slice(h * capacity * hd, perHead), _halves.AsSpan(h * perHead, perHead));
        // A copy from pageable memory has taken its source when it returns: the buffer may be reused.
        fixed (Half* source = _halves)
            _memory.Upload2D(destination, Stride * position, source, perHead * sizeof(ushort), perHead * sizeof(ushort), kvh);
    }

    // Narrowed layers on their way up (a float16 pool), reused from upload to upload.
    private Half[] _halves = [];

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        // The parts go back to the shelf with their memory (a later pool uploads its sequences afresh).
        foreach (var part in _parts) _shelf.Return(part);
        _parts.Clear();
        Forget();
    }
}
