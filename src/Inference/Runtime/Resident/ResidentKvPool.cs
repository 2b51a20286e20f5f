using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
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
    private readonly DeviceMemory _memory;
    private readonly LlamaConfig _config;
    private readonly Func<OrtIoBinding> _newBinding;
    private readonly Func<int>? _graphId;
    private readonly List<Part> _parts = [];
    private readonly Dictionary<KvCache, int> _slotOf = new(ReferenceEqualityComparer.Instance);
    private KvCache?[] _slotCache = [];
    private int[] _slotLength = [];
    private bool _disposed;

    /// <param name="graphId">When given, each part's calls are captured and replayed as one CUDA graph,
    /// under an id this gives it (ONNX Runtime's <c>gpu_graph_id</c>, unique within the session: a graph
    /// replays the addresses it was captured with, and every tensor a call touches stays at the part's).</param>
    public ResidentKvPool(DeviceMemory memory, LlamaConfig config, int rowsPerCall, int stride, Func<OrtIoBinding> newBinding, Func<int>? graphId = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rowsPerCall, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        _memory = memory;
        _config = config;
        _newBinding = newBinding;
        _graphId = graphId;
        RowsPerCall = rowsPerCall;
        Stride = stride;
    }

    /// <summary>Slots per part: the rows of every call.</summary>
    public int RowsPerCall { get; }

    /// <summary>Past positions per slot: the graph's past length under fixed shapes.</summary>
    public int Stride { get; }

    public int PartCount => _parts.Count;

    /// <summary>Bytes of pool memory held (device memory on CUDA).</summary>
    public long Bytes => _parts.Count * PartBytes;

    /// <summary>Sequences copied in whole from their host cache so far: once per sequence while batches keep their members.</summary>
    public long Uploads { get; private set; }

    private long SlotBytes => (long)_config.KvHeads * Stride * _config.HeadDim * sizeof(float);
    private long NewBytes => (long)RowsPerCall * _config.KvHeads * _config.HeadDim * sizeof(float);
    private long InputBytes => (long)RowsPerCall * (2 + Stride + 1) * sizeof(long);
    private long LogitsBytes => (long)RowsPerCall * _config.VocabSize * sizeof(float);
    private long PartBytes => 2L * _config.Layers * (RowsPerCall * SlotBytes + NewBytes) + InputBytes + LogitsBytes;

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

    /// <summary>Brings back the logits of slot <paramref name="local"/> of part <paramref name="part"/>'s last call: only the rows sampling needs cross to the host.</summary>
    public void GetLogits(int part, int local, Span<float> destination)
    {
        int vocab = _config.VocabSize;
        if (destination.Length < vocab) throw new ArgumentException("destination holds less than one row of logits", nameof(destination));
        fixed (float* d = destination)
            _memory.Download(d, _parts[part].Logits + (nint)((long)local * vocab * sizeof(float)), (long)vocab * sizeof(float));
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
        int kvh = c.KvHeads, hd = c.HeadDim;
        long pitch = (long)Stride * hd * sizeof(float), position = hd * sizeof(float);
        int newFloats = RowsPerCall * kvh * hd;
        workspace.EnsureOutputs(c.Layers, newFloats);
        for (int l = 0; l < c.Layers; l++)
        {
            foreach (int b in members)
            {
                int local = slots[b] % RowsPerCall, length = rows[b].Cache.Length;
                // A sequence at the context's last position has no further step to read it.
                if (length >= Stride) continue;
                long slotStart = local * SlotBytes + length * position;
                _memory.Copy2D(p.Keys[l] + (nint)slotStart, pitch, p.NewKeys[l] + (nint)(local * kvh * position), position, position, kvh);
                _memory.Copy2D(p.Values[l] + (nint)slotStart, pitch, p.NewValues[l] + (nint)(local * kvh * position), position, position, kvh);
            }
            var keys = workspace.NewKeys(l);
            var values = workspace.NewValues(l);
            fixed (float* k = keys) _memory.Download(k, p.NewKeys[l], NewBytes);
            fixed (float* v = values) _memory.Download(v, p.NewValues[l], NewBytes);
            foreach (int b in members)
                rows[b].Cache.Append(keys.AsSpan(0, newFloats), values.AsSpan(0, newFloats), l, slots[b] % RowsPerCall, 1, 0, 1, l == c.Layers - 1);
        }
        foreach (int b in members) _slotLength[slots[b]] = rows[b].Cache.Length;
    }

    /// <summary>Waits for every append queued by <see cref="Append"/>: before the next call reads the pool.</summary>
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
        _parts.Add(new Part(this));
        int slots = _parts.Count * RowsPerCall;
        Array.Resize(ref _slotCache, slots);
        Array.Resize(ref _slotLength, slots);
    }

    private void Upload(int slot, KvCache cache)
    {
        var p = _parts[slot / RowsPerCall];
        int local = slot % RowsPerCall, hd = _config.HeadDim, length = cache.Length;
        if (length > Stride) throw new InvalidOperationException($"a sequence of {length} positions does not fit the pool's {Stride}");
        long start = local * SlotBytes, position = hd * sizeof(float);
        for (int l = 0; l < _config.Layers; l++)
        {
            // Zeros first, so no older sequence's numbers sit under the mask (they could not change a
            // bit, but a slot then holds what the staged path would have held).
            _memory.Zero(p.Keys[l] + (nint)start, SlotBytes);
            _memory.Zero(p.Values[l] + (nint)start, SlotBytes);
            if (length == 0) continue;
            fixed (float* k = cache.KeyLayer(l))
                _memory.Upload2D(p.Keys[l] + (nint)start, Stride * position, k, cache.Capacity * position, length * position, _config.KvHeads);
            fixed (float* v = cache.ValueLayer(l))
                _memory.Upload2D(p.Values[l] + (nint)start, Stride * position, v, cache.Capacity * position, length * position, _config.KvHeads);
        }
        _slotLength[slot] = length;
        Uploads++;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var part in _parts) part.Dispose();
        _parts.Clear();
        Forget();
    }

    /// <summary>One call's worth of slots: each layer's past and new positions, and the binding that points the graph at them.</summary>
    private sealed class Part : IDisposable
    {
        private readonly ResidentKvPool _pool;
        private readonly List<OrtValue> _bound = [];

        public Part(ResidentKvPool pool)
        {
            _pool = pool;
            var c = pool._config;
            int layers = c.Layers;
            Keys = new nint[layers];
            Values = new nint[layers];
            NewKeys = new nint[layers];
            NewValues = new nint[layers];
            Binding = pool._newBinding();
            RunOptions = new RunOptions();
            if (pool._graphId is { } next) RunOptions.AddRunConfigEntry("gpu_graph_id", next().ToString(System.Globalization.CultureInfo.InvariantCulture));
            long slotsBytes = pool.RowsPerCall * pool.SlotBytes;
            long[] pastShape = [pool.RowsPerCall, c.KvHeads, pool.Stride, c.HeadDim];
            long[] newShape = [pool.RowsPerCall, c.KvHeads, 1, c.HeadDim];
            try
            {
                int rows = pool.RowsPerCall, total = pool.Stride + 1;
                Ids = pool._memory.Allocate(rows * sizeof(long));
                Positions = pool._memory.Allocate(rows * sizeof(long));
                Mask = pool._memory.Allocate((long)rows * total * sizeof(long));
                Logits = pool._memory.Allocate(pool.LogitsBytes);
                Binding.BindInput("input_ids", Tensor(Ids, [rows, 1], rows * sizeof(long), TensorElementType.Int64));
                Binding.BindInput("position_ids", Tensor(Positions, [rows, 1], rows * sizeof(long), TensorElementType.Int64));
                Binding.BindInput("attention_mask", Tensor(Mask, [rows, total], (long)rows * total * sizeof(long), TensorElementType.Int64));
                Binding.BindOutput("logits", Tensor(Logits, [rows, 1, c.VocabSize], pool.LogitsBytes));
                for (int l = 0; l < layers; l++)
                {
                    Keys[l] = pool._memory.Allocate(slotsBytes);
                    Values[l] = pool._memory.Allocate(slotsBytes);
                    NewKeys[l] = pool._memory.Allocate(pool.NewBytes);
                    NewValues[l] = pool._memory.Allocate(pool.NewBytes);
                    Binding.BindInput($"past_key_values.{l}.key", Tensor(Keys[l], pastShape, slotsBytes));
                    Binding.BindInput($"past_key_values.{l}.value", Tensor(Values[l], pastShape, slotsBytes));
                    Binding.BindOutput($"new_key_values.{l}.key", Tensor(NewKeys[l], newShape, pool.NewBytes));
                    Binding.BindOutput($"new_key_values.{l}.value", Tensor(NewValues[l], newShape, pool.NewBytes));
                }
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public nint[] Keys { get; }
        public nint[] Values { get; }
        public nint[] NewKeys { get; }
        public nint[] NewValues { get; }
        public nint Ids { get; private set; }
        public nint Positions { get; private set; }
        public nint Mask { get; private set; }
        public nint Logits { get; private set; }
        public OrtIoBinding Binding { get; }
        public RunOptions RunOptions { get; }
        public int Calls { get; set; }

        private OrtValue Tensor(nint data, long[] shape, long bytes, TensorElementType type = TensorElementType.Float)
        {
            var value = OrtValue.CreateTensorValueWithData(_pool._memory.Info, type, shape, data, bytes);
            _bound.Add(value);
            return value;
        }

        public void Dispose()
        {
            Binding.Dispose();
            RunOptions.Dispose();
            foreach (var value in _bound) value.Dispose();
            _bound.Clear();
            foreach (var pointer in new[] { Ids, Positions, Mask, Logits })
                if (pointer != 0) _pool._memory.Free(pointer);
            Ids = Positions = Mask = Logits = 0;
            foreach (var pointers in new[] { Keys, Values, NewKeys, NewValues })
                for (int l = 0; l < pointers.Length; l++)
                    if (pointers[l] != 0)
                    {
                        _pool._memory.Free(pointers[l]);
                        pointers[l] = 0;
                    }
        }
    }
}
