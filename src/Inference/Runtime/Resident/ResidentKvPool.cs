using Microsoft.ML.OnnxRuntime;
using Pipeline.Inference.Models;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// The decode actor's pasts kept where the model runs (GPU memory on CUDA), so a decode call reads
/// them in place instead of having every row's past staged and copied in. The pool is made of
/// parts of <see cref="RowsPerCall"/> slots, one model call each, laid out exactly as the graph's
/// past inputs ([rows, kv_heads, <see cref="Stride"/>, head_dim] per layer, keys and values) and
/// bound to them once. A sequence keeps its slot from step to step: it is uploaded from its host
/// cache once, when it first takes a slot; after that a step writes only its new position into the
/// slot, and nothing but the logits comes back.
/// </summary>
/// <remarks>
/// The host <see cref="KvCache"/> stays the record of a sequence's past (prefill writes it, clones
/// copy it, the KV budget counts it), but its newest positions may be held here: each step counts
/// them in the cache (<see cref="KvCache.AdvanceHeld"/>) and the pool writes them back when the
/// cache is read, which for a decoding sequence is when it loses its slot (it sits a step out, the
/// slot goes to another) or when the pool is forgotten or disposed. A sequence that comes back is
/// uploaded again from its complete host cache. Positions of a slot past its sequence's length hold
/// zeros or older numbers; the attention never reads them (the mask hides them from the block graph,
/// seqlens_k bounds GroupQueryAttention), so they never change a bit of the result (P6 on the
/// resident path). Owned by one actor's <see cref="StepWorkspace"/>: no two threads ever touch it.
/// </remarks>
internal sealed unsafe class ResidentKvPool : IDisposable, IHeldPositions
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
        _uploadStage.Attach(_memory);
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
    public long Bytes => _parts.Count * _shelf.PartBytes + (_uploadDevice != 0 ? 2L * _config.Layers * SlotBytes : 0);

    /// <summary>Sequences copied in whole from their host cache so far: once per sequence while batches keep their members.</summary>
    public long Uploads { get; private set; }

    private long SlotBytes => _shelf.SlotBytes;
    private long NewBytes => _shelf.NewBytes;

    /// <summary>Rows of the small call over a part's first slots (0: none).</summary>
    public int SmallRows => _shelf.SmallRows;

    /// <summary>The binding of part <paramref name="part"/>'s full or <paramref name="small"/> call: every input and output bound for good, to the part's own memory.</summary>
    public OrtIoBinding Binding(int part, bool small = false) => small ? _parts[part].SmallBinding! : _parts[part].Binding;

    /// <summary>The run options of part <paramref name="part"/>'s full or small calls (each its own CUDA graph's id when graphs are on).</summary>
    public RunOptions RunOptions(int part, bool small = false) => small ? _parts[part].SmallRunOptions! : _parts[part].RunOptions;

    /// <summary>Full or small calls part <paramref name="part"/> has made (the first few of each warm up and capture its CUDA graph).</summary>
    public int Calls(int part, bool small = false) => small ? _parts[part].SmallCalls : _parts[part].Calls;

    /// <summary>Counts one full or small call of part <paramref name="part"/>.</summary>
    public void Called(int part, bool small = false)
    {
        if (small) _parts[part].SmallCalls++;
        else _parts[part].Calls++;
    }

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
        int vocab = _config.VocabSize;
        var all = DownloadLogits(part, members, slots).Span;
        if ((long)members.Count * vocab * sizeof(float) < ParallelCopyBytes)
        {
            foreach (int b in members)
                all.Slice(slots[b] % RowsPerCall * vocab, vocab).CopyTo(destination.Slice(b * vocab, vocab));
            return;
        }
        // Megabytes of rows (32 of a 32,000-id vocabulary are 4 MB): one core's copy took about as
        // long as the download; rows go to their places on several.
        foreach (int b in members)
            if ((long)(b + 1) * vocab > destination.Length) throw new ArgumentException("logits buffer too small", nameof(destination));
        fixed (float* target = destination)
        {
            nint from = _parts[part].HostLogits, to = (nint)target;
            int perCall = RowsPerCall;
            Parallel.For(0, members.Count, i =>
            {
                int b = members[i];
                Buffer.MemoryCopy((float*)from + (long)(slots[b] % perCall) * vocab, (float*)to + (long)b * vocab, (long)vocab * sizeof(float), (long)vocab * sizeof(float));
            });
        }
    }

    /// <summary>
    /// Brings back the logits of part <paramref name="part"/>'s last call for <paramref name="members"/>'
    /// slots into the part's own host memory, and returns it ([rows, vocab]; a member's row is its slot
    /// within the part): nothing is copied again on the host. Valid until the part's next call.
    /// </summary>
    public Memory<float> DownloadLogits(int part, IReadOnlyList<int> members, int[] slots)
    {
        int vocab = _config.VocabSize, highest = -1;
        foreach (int b in members) highest = Math.Max(highest, slots[b] % RowsPerCall);
        var p = _parts[part];
        if (highest >= 0) _memory.Download((void*)p.HostLogits, p.Logits, (long)(highest + 1) * vocab * sizeof(float));
        return p.HostLogitsMemory;
    }

    /// <summary>Logits at or above this many bytes a part are copied into place by several threads.</summary>
    private const long ParallelCopyBytes = 1L << 20;

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
                // The slot goes to another sequence: what only it held goes back to its cache first.
                if (held.HasHeldPositions && !held.IsDisposed) held.Materialize();
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
    /// After part <paramref name="part"/>'s call: its rows' new positions are in their slots (the
    /// block graph's outputs are copied there; GroupQueryAttention wrote them itself), and each row's
    /// cache counts them as held by this pool. Nothing comes back to the host: a cache gets its held
    /// positions when something reads it (<see cref="WriteBack"/>), which for a decoding sequence is
    /// when it loses its slot.
    /// </summary>
    public void Append(int part, IReadOnlyList<SequenceStep> rows, IReadOnlyList<int> members, int[] slots)
    {
        var c = _config;
        var p = _parts[part];
        int kvh = c.KvHeads, hd = c.HeadDim, layers = c.Layers;
        long pitch = (long)Stride * hd * _shelf.ElementBytes, position = hd * _shelf.ElementBytes;
        // One copy per row for every layer's keys and values (slices K0, V0, K1, ... of the part's
        // blocks): rows of kv_heads, one position wide, at the row's length.
        if (!_shelf.GroupQuery)
            foreach (int b in members)
            {
                int local = slots[b] % RowsPerCall, length = rows[b].Cache.Length;
                _memory.Copy3D(p.Pasts + (nint)(local * SlotBytes + length * position), pitch, RowsPerCall * SlotBytes,
                    p.News + (nint)(local * kvh * position), position, NewBytes, position, kvh, 2L * layers);
            }
        foreach (int b in members)
        {
            rows[b].Cache.AdvanceHeld(1, this);
            _slotLength[slots[b]] = rows[b].Cache.Length;
        }
    }

    /// <summary>
    /// Writes <paramref name="cache"/>'s held positions back from its slot: gathered on the device
    /// into one block, brought back in one download (widened from float16, exactly), written into the
    /// cache. Runs on the thread that reads the cache, so only where the pool's owner is not running
    /// a call: the owner itself (a sequence losing its slot), or a caller it has finished with.
    /// </summary>
    public void WriteBack(KvCache cache)
    {
        if (cache.IsDisposed) return;
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        if (!_slotOf.TryGetValue(cache, out int slot))
            throw new InvalidOperationException("a cache's held positions are not in this pool");
        var c = _config;
        int e = _shelf.ElementBytes, hd = c.HeadDim, kvh = c.KvHeads, layers = c.Layers;
        int from = cache.HostLength, count = cache.Length - from;
        if (count <= 0 || _slotLength[slot] != cache.Length)
            throw new InvalidOperationException($"the pool holds {_slotLength[slot]} positions of a sequence of {cache.Length} (its cache has {from})");
        var p = _parts[slot / RowsPerCall];
        long rowBytes = (long)count * hd * e, position = hd * e;
        if (_uploadDevice == 0) _uploadDevice = _memory.Allocate(2L * layers * SlotBytes);
        _memory.Copy3D(_uploadDevice, rowBytes, kvh * rowBytes,
            p.Pasts + (nint)(slot % RowsPerCall * SlotBytes + from * position), (long)Stride * position, RowsPerCall * SlotBytes, rowBytes, kvh, 2L * layers);
        nint stage = _uploadStage.Get(2L * layers * SlotBytes);
        long bytes = 2L * layers * kvh * rowBytes;
        _memory.Download((void*)stage, _uploadDevice, bytes);
        int perLayer = kvh * count * hd;
        ReadOnlySpan<float> all;
        if (e == sizeof(float))
            all = new ReadOnlySpan<float>((void*)stage, 2 * layers * perLayer);
        else
        {
            // Widening is exact: an upload later narrows them back to the very bits the slot held.
            if (_widened.Length < 2 * layers * perLayer) _widened = new float[2 * layers * perLayer];
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((void*)stage, 2 * layers * perLayer), _widened);
            all = _widened.AsSpan(0, 2 * layers * perLayer);
        }
        for (int l = 0; l < layers; l++)
            cache.WriteHeld(l, all.Slice(2 * l * perLayer, perLayer), all.Slice((2 * l + 1) * perLayer, perLayer), l == layers - 1);
        WrittenBack++;
        _shelf.Phases?.AddWriteBack(System.Diagnostics.Stopwatch.GetTimestamp() - started);
    }

    /// <summary>Times held positions were written back to their caches (a sequence losing its slot, or a reader).</summary>
    public long WrittenBack { get; private set; }

    // A float16 pool's written-back positions, widened.
    private float[] _widened = [];

    /// <summary>Waits for every copy queued so far (uploads, appends, inputs): before a call reads the pool.</summary>
    public void Synchronize() => _memory.Synchronize();

    /// <summary>
    /// Forgets every slot's sequence from part <paramref name="fromPart"/> on (after a failed call;
    /// earlier parts finished theirs), so each is uploaded afresh next time; what a slot held goes
    /// back to its cache first, and a cache it cannot reach is marked lost (reading it throws)
    /// rather than left with stale positions.
    /// </summary>
    public void Forget(int fromPart = 0)
    {
        for (int s = fromPart * RowsPerCall; s < _slotCache.Length; s++)
        {
            if (_slotCache[s] is not { } held) continue;
            if (!held.IsDisposed && held.HasHeldPositions)
            {
                try
                {
                    held.Materialize();
                }
                catch (Exception e) when (e is InvalidOperationException or ArgumentException)
                {
                    held.LoseHeld($"the resident pool could not write them back ({e.Message})");
                }
            }
            _slotOf.Remove(held);
            _slotCache[s] = null;
        }
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
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        _parts.Add(_shelf.Rent());
        _shelf.Phases?.AddRent(System.Diagnostics.Stopwatch.GetTimestamp() - started);
        int slots = _parts.Count * RowsPerCall;
        Array.Resize(ref _slotCache, slots);
        Array.Resize(ref _slotLength, slots);
    }

    private void Upload(int slot, KvCache cache)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp(), copies = 0;
        var p = _parts[slot / RowsPerCall];
        int local = slot % RowsPerCall, hd = _config.HeadDim, kvh = _config.KvHeads, layers = _config.Layers, length = cache.Length;
        if (length > Stride) throw new InvalidOperationException($"a sequence of {length} positions does not fit the pool's {Stride}");
        int e = _shelf.ElementBytes;
        nint slotStart = p.Pasts + (nint)(local * SlotBytes);
        long slicePitch = RowsPerCall * SlotBytes;
        if (cache.Holder is PrefillBlock block && block.Serves(_memory) && e == sizeof(ushort) && cache.HostLength == 0)
        {
            // A prompt whose positions are still where its prefill call left them: one copy on the
            // device, nothing through the host. The block may serve the next prefill call as soon as
            // this row lets go, so the copy is finished first.
            _memory.Zero2D(slotStart, slicePitch, SlotBytes, 2L * layers);
            long copying = System.Diagnostics.Stopwatch.GetTimestamp();
            block.CopyRowTo(cache, _memory, slotStart, (long)Stride * hd * e, slicePitch);
            _memory.Synchronize();
            cache.TransferHeld(this);
            _slotLength[slot] = length;
            Uploads++;
            long now = System.Diagnostics.Stopwatch.GetTimestamp();
            _shelf.Phases?.AddUpload(copying - started, now - copying);
            return;
        }
        // Zeros first, so no older sequence's numbers sit under the mask (they could not change a
        // bit, but a slot then holds what the staged path would have held): every layer's keys and
        // values of the slot in one call.
        _memory.Zero2D(slotStart, slicePitch, SlotBytes, 2L * layers);
        if (length > 0)
        {
            // Every layer's keys and values gathered (and narrowed, for a float16 pool) into one pinned
            // buffer laid out as the slices K0, V0, K1, ... of kv_heads rows of the sequence's length,
            // then one copy into the slot.
            int perHead = length * hd;
            long rowBytes = (long)perHead * e;
            // Sized once for the longest sequence a slot holds: growing pinned memory is slow.
            nint stage = _uploadStage.Get(2L * layers * SlotBytes);
            for (int l = 0; l < layers; l++)
                for (int kv = 0; kv < 2; kv++)
                {
                    var layer = kv == 0 ? cache.KeyLayer(l) : cache.ValueLayer(l);
                    for (int h = 0; h < kvh; h++)
                    {
                        var from = layer.Slice(h * cache.Capacity * hd, perHead);
                        long at = ((2L * l + kv) * kvh + h) * rowBytes;
                        if (e == sizeof(float)) from.CopyTo(new Span<float>((void*)(stage + (nint)at), perHead));
                        else System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(from, new Span<Half>((void*)(stage + (nint)at), perHead));
                    }
                }
            // Up in one contiguous copy, then one copy within the device puts each head's rows where
            // the slot keeps them (a host-to-device copy of hundreds of short strided rows was ~1.7 ms
            // a sequence on the H200, docs/PERFORMANCE.md).
            long bytes = 2L * layers * kvh * rowBytes;
            if (_uploadDevice == 0) _uploadDevice = _memory.Allocate(2L * layers * SlotBytes);
            long copying = System.Diagnostics.Stopwatch.GetTimestamp();
            _memory.Upload((nint)_uploadDevice, (void*)stage, bytes);
            _memory.Copy3D(slotStart, (long)Stride * hd * e, slicePitch, _uploadDevice, rowBytes, kvh * rowBytes, rowBytes, kvh, 2L * layers);
            copies = System.Diagnostics.Stopwatch.GetTimestamp() - copying;
        }
        _slotLength[slot] = length;
        Uploads++;
        _shelf.Phases?.AddUpload(System.Diagnostics.Stopwatch.GetTimestamp() - started - copies, copies);
    }

    // Host buffers the device copies from and to (pinned on CUDA), owned by this pool: sequences on
    // their way up (and held positions on their way back). Logits come back to each part's own.
    private readonly HostBuffer _uploadStage = new();
    // The device side of an upload, before the copy that spreads it into the slot (one pool's, one slot's worth).
    private nint _uploadDevice;

    private sealed class HostBuffer
    {
        private DeviceMemory? _memory;
        private long _bytes;

        public nint Pointer { get; private set; }

        public void Attach(DeviceMemory memory) => _memory = memory;

        /// <summary>At least <paramref name="bytes"/> (the old contents are not kept when it grows).</summary>
        public nint Get(long bytes)
        {
            if (bytes <= _bytes) return Pointer;
            Release();
            Pointer = _memory!.AllocateHost(bytes);
            _bytes = bytes;
            return Pointer;
        }

        public void Release()
        {
            if (Pointer != 0) _memory!.FreeHost(Pointer);
            Pointer = 0;
            _bytes = 0;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        // Sequences still holding positions here get them before the memory goes; the parts go back
        // to the shelf with their memory (a later pool uploads its sequences afresh).
        Forget();
        _disposed = true;
        foreach (var part in _parts) _shelf.Return(part);
        _parts.Clear();
        _uploadStage.Release();
        if (_uploadDevice != 0) _memory.Free(_uploadDevice);
        _uploadDevice = 0;
    }
}
