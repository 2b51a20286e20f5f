using Microsoft.ML.OnnxRuntime;
using Pipeline.Inference.Models;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime.Resident;

namespace Pipeline.Inference.Runtime;

// Decode calls over a resident pool: the pasts stay where the model runs (see ResidentKvPool).
internal sealed partial class DecoderModel
{
    // Where resident pools live: CUDA memory, host memory (CPU, for tests), or none (staged pasts).
    private DeviceMemory? _memory;

    // The session resident decode calls run on (fixed dimensions); null when there is no pool. And
    // the session of the small calls over a part's first slots (BatchShapes.SmallDecodeRows), or null.
    private InferenceSession? _decodeSession;
    private InferenceSession? _smallDecodeSession;

    /// <summary>Whether resident decode calls are captured and replayed as CUDA graphs (<c>--cuda-graph</c>).</summary>
    public bool CudaGraph { get; private set; }

    // With CUDA graphs: the thread every resident decode call runs on (ONNX Runtime keeps a captured
    // graph per thread), and a gate that other calls pass shared and a capturing call holds alone.
    // ONNX Runtime captures in CUDA's global mode, in which CUDA work from any other thread (a
    // prefill call, an upload) invalidates the capture; captures are a few calls per pool part, so
    // the gate is uncontended after the first steps. Graph ids are unique within the session: a
    // graph replays the addresses it was captured with, and each part has its own.
    private DeviceThread? _deviceThread;
    // Prefill calls go to the device thread too (RunnerOptions.SerialPrefill).
    private bool _serialPrefill;
    private ReaderWriterLockSlim? _captureGate;
    private int _graphIds;

    // The pool parts no workspace holds now, kept for the next pool (their memory, their graphs).
    private ResidentShelf? _shelf;

    /// <summary>Resident pool parts made so far: each is allocated (and, with graphs, captured) once and reused by later pools.</summary>
    internal int ResidentPartsMade => _shelf?.Made ?? 0;

    // Calls a part makes before its graph is captured and replayed (ONNX Runtime warms up, then
    // captures on the second or third run depending on the version): these hold the gate alone.
    private const int CaptureCalls = 3;

    /// <summary>"CUDA" or "host" when decode calls read a resident pool; null when each call stages the pasts.</summary>
    public string? ResidentKv => _memory?.Name;

    /// <summary>Where resident decode calls spent their time, summed since the model loaded; null without a pool.</summary>
    internal ResidentPhaseTimes? ResidentPhases { get; private set; }

    /// <summary>How resident decode calls attend and what their pasts hold (for reports), or null without a pool.</summary>
    public string? ResidentAttention { get; private set; }

    // Whether small calls run: set once, when the model loads, by CheckSmallCall.
    private bool _smallAgrees;

    /// <summary>Why the small decode call (<see cref="BatchShapes.SmallDecodeRows"/>) is not used although the shapes ask for it, or null.</summary>
    public string? SmallDecodeFallbackReason { get; private set; }

    /// <summary>Whether resident decode calls whose rows all sit in a part's first slots run the small call.</summary>
    public bool RunsSmallDecodeCalls => _smallAgrees;

    /// <summary>Why a resident pool was wanted on CUDA but is not used, or null.</summary>
    public string? ResidentFallbackReason { get; private set; }

    private void ChooseResidence(RunnerOptions options, string onnxPath)
    {
        var requested = options.ResidentKv;
        if (options.SerialPrefill == true && (ExecutionProvider != "CUDA" || options.CudaGraph == false || requested == false))
            throw new ArgumentException("--serial-prefill needs CUDA graphs (--cuda with resident pasts and --cuda-graph on)");
        if (options.CudaGraph == true && ExecutionProvider != "CUDA")
            throw new ArgumentException("--cuda-graph needs the CUDA execution provider (--cuda, in a build with -p:UseCuda=true)");
        if (requested == false)
        {
            if (options.CudaGraph == true) throw new ArgumentException("--cuda-graph needs --resident-kv on");
            return;
        }
        bool fixedShapes = Shapes.DecodeRows > 0 && Shapes.PastToContext;
        if (!fixedShapes || !_newOnly)
        {
            if (requested == true || options.CudaGraph == true)
                throw new ArgumentException(!_newOnly
                    ? "--resident-kv needs a graph written by the pipeline converter (new_key_values outputs)"
                    : $"--resident-kv needs fixed decode shapes (decode=N and context in --batch-shapes), not '{Shapes}'");
            return;
        }
        if (ExecutionProvider == "CUDA")
        {
            _memory = CudaMemory.TryCreate(0, out var reason);
            if (_memory is null)
            {
                if (requested == true) throw new InvalidOperationException($"--resident-kv: {reason}");
                ResidentFallbackReason = $"{reason}; decode calls stage their pasts from the host";
                return;
            }
        }
        else if (requested == true)
        {
            _memory = new HostMemory();
        }
        else
        {
            return;
        }
        OpenDecodeSession(options, onnxPath);
    }

    // Resident decode calls run on a session of their own whose every dimension is fixed (rows,
    // one new token, the padded past), so ONNX Runtime folds the graph's shape arithmetic away and,
    // on CUDA, may capture the whole call as a CUDA graph. It loads the weights a second time.
    private void OpenDecodeSession(RunnerOptions options, string onnxPath)
    {
        // On by default where the pool is in CUDA memory: P1 and the resident check pass with graphs, and
        // they are faster at every concurrency measured (docs/PERFORMANCE.md, "CUDA").
        bool graph = options.CudaGraph ?? _memory is CudaMemory;
        var decodeOptions = options with
        {
            UseCuda = ExecutionProvider == "CUDA",
            ProfilePrefix = options.ProfilePrefix is { } prefix ? prefix + "-decode" : null,
        };
        // The float16 GroupQueryAttention graph when the loader converted one (options.DecodeGraphPath).
        string decodeGraph = options.DecodeGraphPath ?? onnxPath;
        using var so = NewSessionOptions(decodeOptions, decodeGraph, graph, out _, out _);
        so.AddFreeDimensionOverrideByName("batch_size", Shapes.DecodeRows);
        so.AddFreeDimensionOverrideByName("sequence_length", 1);
        int stride = Shapes.Past(StepKind.Decode, 0, AttentionBlock, Config.SeqLen);
        so.AddFreeDimensionOverrideByName("past_sequence_length", stride);
        so.AddFreeDimensionOverrideByName("total_sequence_length", stride + 1);
        _decodeSession = new InferenceSession(decodeGraph, so);
        int small = Shapes.SmallDecodeRows;
        if (small > 0)
        {
            if (small >= Shapes.DecodeRows) throw new ArgumentException($"--batch-shapes: small={small} must be fewer rows than decode={Shapes.DecodeRows}");
            // The same graph with every dimension fixed again, but for the small call's rows: it loads the weights a third time.
            using var smallOptions = NewSessionOptions(decodeOptions with { ProfilePrefix = decodeOptions.ProfilePrefix is { } p ? p + "-small" : null }, decodeGraph, graph, out _, out _);
            smallOptions.AddFreeDimensionOverrideByName("batch_size", small);
            smallOptions.AddFreeDimensionOverrideByName("sequence_length", 1);
            smallOptions.AddFreeDimensionOverrideByName("past_sequence_length", stride);
            smallOptions.AddFreeDimensionOverrideByName("total_sequence_length", stride + 1);
            _smallDecodeSession = new InferenceSession(decodeGraph, smallOptions);
        }
        CudaGraph = graph;
        var session = _decodeSession;
        bool groupQuery = session.InputMetadata.ContainsKey(LlamaOnnxExporter.SeqlensInput);
        int elementBytes = session.InputMetadata["past_key_values.0.key"].ElementDataType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16 ? 2 : sizeof(float);
        ResidentPhases = new ResidentPhaseTimes();
        ResidentAttention = groupQuery ? $"GroupQueryAttention, {(elementBytes == 2 ? "float16" : "float32")} pasts" : "blocks, float32 pasts";
        _shelf = new ResidentShelf(_memory!, Config, Shapes.DecodeRows, stride, session.CreateIoBinding,
            graph ? () => Interlocked.Increment(ref _graphIds) - 1 : null, session.InputMetadata.ContainsKey(LlamaOnnxExporter.LastPositionInput),
            groupQuery, elementBytes)
        {
            Phases = ResidentPhases,
            SmallRows = _smallDecodeSession is null ? 0 : small,
            NewSmallBinding = _smallDecodeSession is { } smallSession ? smallSession.CreateIoBinding : null,
        };
        if (groupQuery && elementBytes == 2 && options.HalfPrefill != false && Shapes.PrefillRows > 0 && Shapes.PadPrefillToBlock)
            OpenHalfPrefillSession(options with
            {
                UseCuda = ExecutionProvider == "CUDA",
                ProfilePrefix = options.ProfilePrefix is { } prefillPrefix ? prefillPrefix + "-prefill" : null,
            }, decodeGraph);
        if (graph)
        {
            _deviceThread = new DeviceThread("pipeline-cuda-graphs");
            _captureGate = new ReaderWriterLockSlim(LockRecursionPolicy.SupportsRecursion);
            _serialPrefill = options.SerialPrefill ?? true;
        }
    }

    /// <summary>
    /// Whether a row's bits in the small call are the full call's, checked where the model runs,
    /// before any request: measured on an H200 with ONNX Runtime 1.31 (the attention splits long
    /// pasts differently for fewer than 8 rows; from 8 to 64 rows every row came out the same), but
    /// that is the kernels' choice on that device, not a promise. A dozen sequences with made-up pasts
    /// (short, either side of block edges, the longest a slot holds) are decoded each alone (the small call) and all
    /// together with enough others to need the full call; if any logit differs, small calls are off
    /// (<see cref="SmallDecodeFallbackReason"/>) and every call has the full shape, as without them.
    /// </summary>
    private void CheckSmallCall()
    {
        int small = _shelf?.SmallRows ?? 0;
        if (small == 0) return;
        var c = Config;
        int stride = Shapes.Past(StepKind.Decode, 0, AttentionBlock, c.SeqLen);
        // The full call needs a row past the small call's slots; the first rows are the ones compared.
        // Pasts on both sides of every 64-position block edge up to the longest a slot holds: where an
        // attention splits its work by length, the split shows there (on the H200 it did past 256).
        int[] lengths = [.. new[] { 3, 63, 65, 130, 200, 255, 257, 260, 320, 383, 385, 450, stride - 1 }.Select(l => Math.Clamp(l, 1, stride - 1)).Distinct()];
        int rows = Math.Max(small + 1, lengths.Length), vocab = c.VocabSize;
        var caches = new KvCache[rows];
        try
        {
            for (int r = 0; r < rows; r++) caches[r] = MadeUpCache(c, r < lengths.Length ? lengths[r] : 1 + r, seed: r);
            _smallAgrees = true;
            var together = new float[rows * vocab];
            var copies = caches.Select(cache => cache.Clone()).ToArray();
            try
            {
                using var workspace = new StepWorkspace();
                StepResident([.. copies.Select(copy => new SequenceStep(copy, CheckToken))], workspace, together);
            }
            finally
            {
                foreach (var copy in copies) copy.Dispose();
            }
            var alone = new float[vocab];
            for (int r = 0; r < lengths.Length; r++)
            {
                using var workspace = new StepWorkspace();
                using var copy = caches[r].Clone();
                StepResident([new SequenceStep(copy, CheckToken)], workspace, alone);
                if (!alone.AsSpan().SequenceEqual(together.AsSpan(r * vocab, vocab)))
                {
                    _smallAgrees = false;
                    SmallDecodeFallbackReason = $"a row at past {lengths[r]} came out of the {small}-row call with other bits than out of the {Shapes.DecodeRows}-row call here; every decode call has {Shapes.DecodeRows} rows";
                    DropSmallCalls();
                    return;
                }
            }
        }
        finally
        {
            foreach (var cache in caches) cache?.Dispose();
        }
    }

    /// <summary>
    /// Frees what only small calls use: the parts made so far (all back on the shelf: the check's
    /// pools are gone), which hold its bindings, then its session and the weights it loaded.
    /// </summary>
    private void DropSmallCalls()
    {
        var shelf = _shelf!;
        _shelf = shelf.WithoutSmallCalls();
        shelf.Dispose();
        _smallDecodeSession?.Dispose();
        _smallDecodeSession = null;
    }

    /// <summary>Whether the small call's session is loaded (it is dropped when the load-time check turns small calls off).</summary>
    internal bool SmallSessionLoaded => _smallDecodeSession is not null;

    // The token every row of the check feeds (any id: only the comparison matters).
    private static readonly ReadOnlyMemory<int> CheckToken = new[] { 7 };

    /// <summary>A cache of <paramref name="length"/> positions of made-up keys and values in [-1, 1), the same for a seed.</summary>
    private static KvCache MadeUpCache(LlamaConfig c, int length, int seed)
    {
        var cache = new KvCache(c, initialCapacity: length);
        var random = new Random(seed);
        int count = c.KvHeads * length * c.HeadDim;
        var keys = new float[count];
        var values = new float[count];
        for (int l = 0; l < c.Layers; l++)
        {
            for (int i = 0; i < count; i++)
            {
                keys[i] = (float)(random.NextDouble() * 2 - 1);
                values[i] = (float)(random.NextDouble() * 2 - 1);
            }
            cache.Append(keys, values, l, row: 0, total: length, start: 0, count: length, lastLayer: l == c.Layers - 1);
        }
        return cache;
    }

    /// <summary>
    /// A prefill call run on the device thread, between resident decode calls. Taken before the
    /// capture gate: that thread never captures while it runs this, and a caller holding the gate
    /// while it waits for a capturing thread would never get it.
    /// </summary>
    private unsafe void StepOnDeviceThread(DeviceThread thread, IReadOnlyList<SequenceStep> rows, StepWorkspace workspace, Span<float> logits, StepKind kind, BatchShapes shapes)
    {
        // The caller waits, so its logits stay pinned for the call.
        fixed (float* pinned = logits)
        {
            nint address = (nint)pinned;
            int length = logits.Length;
            thread.Invoke(() => Step(rows, workspace, new Span<float>((void*)address, length), kind, shapes));
        }
    }

    private static bool FeedsOneTokenEach(IReadOnlyList<SequenceStep> rows)
    {
        foreach (var row in rows)
            if (row.Tokens.Length != 1) return false;
        return rows.Count > 0;
    }

    /// <summary>
    /// One decode step over the workspace's resident pool: every part of <see cref="BatchShapes.DecodeRows"/>
    /// slots that holds a row runs one call of the fixed shape, reading its pasts in place.
    /// </summary>
    private unsafe void StepResident(IReadOnlyList<SequenceStep> rows, StepWorkspace workspace, Span<float> logits, Action<ReadyRows>? rowsReady = null)
    {
        if (_deviceThread is { } thread)
        {
            // The caller waits, so its logits stay pinned for the call.
            fixed (float* pinned = logits)
            {
                nint address = (nint)pinned;
                int length = logits.Length;
                thread.Invoke(() => StepResidentHere(rows, workspace, new Span<float>((void*)address, length), rowsReady));
            }
            return;
        }
        StepResidentHere(rows, workspace, logits, rowsReady);
    }

    private void StepResidentHere(IReadOnlyList<SequenceStep> rows, StepWorkspace workspace, Span<float> logits, Action<ReadyRows>? rowsReady)
    {
        var c = Config;
        int vocab = c.VocabSize, slots = Shapes.DecodeRows;
        int stride = Shapes.Past(StepKind.Decode, 0, AttentionBlock, c.SeqLen), total = stride + 1;
        if (logits.Length < rows.Count * vocab) throw new ArgumentException("logits buffer too small", nameof(logits));
        foreach (var r in rows)
            if (r.Cache.Length + 1 > c.SeqLen)
                throw new InvalidOperationException($"sequence would reach {r.Cache.Length + 1} positions, past the context length {c.SeqLen}");
        var shelf = _shelf!;
        var pool = workspace.ResidentPool(() => new ResidentKvPool(shelf));
        bool completed = false;
        // Parts before this one are done and reported: a failure forgets only the slots from here on.
        int failingFrom = 0;
        try
        {
            long started = System.Diagnostics.Stopwatch.GetTimestamp(), uploads = pool.Uploads;
            var placed = pool.Place(rows);
            ResidentPhases!.AddPlace(System.Diagnostics.Stopwatch.GetTimestamp() - started, pool.Uploads - uploads);
            var members = new List<int>(slots);
            for (int part = 0; part < pool.PartCount; part++)
            {
                members.Clear();
                for (int b = 0; b < rows.Count; b++)
                    if (placed[b] / slots == part) members.Add(b);
                if (members.Count == 0) continue;
                var landed = RunPart(pool, part, rows, members, placed, workspace, logits, total, inPlace: rowsReady is not null);
                if (rowsReady is not null)
                {
                    failingFrom = part + 1;
                    rowsReady(new ReadyRows([.. members], landed, [.. members.Select(b => placed[b] % slots)]));
                }
            }
            // No wait here for the appends still in flight: the next call waits before it runs.
            completed = true;
        }
        finally
        {
            if (!completed) pool.Forget(failingFrom);
        }
    }

    /// <summary>
    /// One part's call. Its logits go into <paramref name="logits"/> at their rows, or with
    /// <paramref name="inPlace"/> stay in the part's host memory, which is returned (a member's row is its slot in the part).
    /// </summary>
    private Memory<float> RunPart(ResidentKvPool pool, int part, IReadOnlyList<SequenceStep> rows, List<int> members, int[] placed, StepWorkspace workspace, Span<float> logits, int total, bool inPlace)
    {
        int slots = pool.RowsPerCall, vocab = Config.VocabSize, stride = total - 1;
        var ids = workspace.InputIds.Get(slots);
        var positions = workspace.PositionIds.Get(slots);
        Array.Clear(ids, 0, slots);
        Array.Clear(positions, 0, slots);
        foreach (int b in members)
        {
            int j = placed[b] % slots;
            ids[j] = rows[b].Tokens.Span[0];
            positions[j] = rows[b].Cache.Length;
        }
        long inputsStarted = System.Diagnostics.Stopwatch.GetTimestamp();
        if (pool.GroupQuery)
        {
            // seqlens_k is each row's past length (its length after the call, minus one); an empty
            // slot's 0 has it attend its own token at position 0, as a padding row does.
            var seqlens = workspace.SeqlensK.Get(slots);
            for (int j = 0; j < slots; j++) seqlens[j] = (int)positions[j];
            pool.SetInputs(part, ids, positions, seqlens);
        }
        else
        {
            var mask = workspace.AttentionMask.Get(slots * total);
            Array.Clear(mask, 0, slots * total);
            // Empty slots feed token 0 at position 0 that sees only itself, as padding rows do when staged.
            for (int j = 0; j < slots; j++) mask[j * total + stride] = 1;
            foreach (int b in members)
                mask.AsSpan(placed[b] % slots * total, rows[b].Cache.Length).Fill(1);
            pool.SetInputs(part, ids, positions, mask);
        }
        // Uploads from pageable memory and memsets may still be in flight when CUDA returns, on the
        // legacy stream, which ONNX Runtime's non-blocking stream does not wait for: finish them first.
        pool.Synchronize();
        var phases = ResidentPhases!;
        long mark = System.Diagnostics.Stopwatch.GetTimestamp();
        phases.AddInputs(mark - inputsStarted);
        // Rows all in the part's first slots run the small call where there is one: the same bits
        // (BatchShapes.SmallDecodeRows), fewer rows of work.
        bool small = _smallAgrees && pool.SmallRows > 0;
        foreach (int b in members) small &= placed[b] % slots < pool.SmallRows;
        var binding = pool.Binding(part, small);
        bool capturing = _captureGate is not null && pool.Calls(part, small) < CaptureCalls;
        if (capturing) _captureGate!.EnterWriteLock();
        try
        {
            (small ? _smallDecodeSession! : _decodeSession!).RunWithBinding(pool.RunOptions(part, small), binding);
            binding.SynchronizeBoundOutputs();
        }
        finally
        {
            if (capturing) _captureGate!.ExitWriteLock();
        }
        pool.Called(part, small);
        phases.AddRun(System.Diagnostics.Stopwatch.GetTimestamp() - mark, small);
        mark = System.Diagnostics.Stopwatch.GetTimestamp();
        var landed = Memory<float>.Empty;
        if (inPlace) landed = pool.DownloadLogits(part, members, placed);
        else pool.GetLogits(part, members, placed, logits, workspace);
        phases.AddLogits(System.Diagnostics.Stopwatch.GetTimestamp() - mark);
        mark = System.Diagnostics.Stopwatch.GetTimestamp();
        pool.Append(part, rows, members, placed);
        phases.AddAppend(System.Diagnostics.Stopwatch.GetTimestamp() - mark);
        return landed;
    }
}
