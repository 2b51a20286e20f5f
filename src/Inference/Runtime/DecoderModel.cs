using Microsoft.ML.OnnxRuntime;
using Pipeline.Inference.Models;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Text;

namespace Pipeline.Inference.Runtime;

/// <summary>
/// One loaded decoder: an ONNX Runtime session, created once, shared by every actor and never
/// mutated after construction. <see cref="Step"/> runs one model call for a ragged batch of
/// sequences and appends each one's new keys and values to its own cache.
/// </summary>
/// <remarks>
/// Bit-exactness across batches: every row's past is padded to a common length that is a multiple
/// of the graph's attention block, so each sequence's keys sit in the same blocks, in the same
/// place, whether it runs alone or beside longer sequences (see LlamaOnnxExporter).
/// </remarks>
internal sealed partial class DecoderModel : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly bool _newOnly;
    // The runner's graph gives logits for the one position per row its one-hot last_position input
    // picks ([batch, 1, vocab]); an Optimum-layout model gives every fed position's.
    private readonly bool _lastOnly;
    // The CPU graph's GroupQueryAttention (AttentionKernel.GroupQuery): no attention mask; each
    // row's length goes in as seqlens_k, and the kernel writes the new positions into the staged
    // past, bound as its present output.
    private readonly bool _groupQuery;
    // Shared by every call: ONNX Runtime only reads it (no tag, no terminate flag is ever set).
    private readonly RunOptions _runOptions = new();

    private DecoderModel(InferenceSession session, LlamaConfig config, int attentionBlock, long weightBytes, string provider, string? fallbackReason, BatchShapes? shapes)
    {
        _session = session;
        Shapes = shapes ?? (provider == "CUDA" ? CudaShapes : BatchShapes.Exact);
        Config = config;
        WeightBytes = weightBytes;
        AttentionBlock = attentionBlock;
        ExecutionProvider = provider;
        ProviderFallbackReason = fallbackReason;
        _groupQuery = session.InputMetadata.ContainsKey(LlamaOnnxExporter.SeqlensInput);
        var inputs = new List<string> { "input_ids", _groupQuery ? LlamaOnnxExporter.SeqlensInput : "attention_mask", "position_ids" };
        var outputs = new List<string> { "logits" };
        // Each sequence keeps its own cache, so only the new positions are needed: the runner's
        // graph gives them alone (new_key_values.*); an Optimum-layout model gives past + new.
        _newOnly = session.OutputMetadata.ContainsKey("new_key_values.0.key");
        var kind = _newOnly ? "new_key_values" : LlamaOnnxExporter.PresentPrefix.TrimEnd('.');
        _lastOnly = session.InputMetadata.ContainsKey(LlamaOnnxExporter.LastPositionInput);
        for (int l = 0; l < config.Layers; l++)
        {
            inputs.Add($"past_key_values.{l}.key");
            inputs.Add($"past_key_values.{l}.value");
            outputs.Add($"{kind}.{l}.key");
            outputs.Add($"{kind}.{l}.value");
        }
        if (_lastOnly) inputs.Add(LlamaOnnxExporter.LastPositionInput);
        // Its present.* outputs are the staged past itself, the new positions written in.
        if (_groupQuery) inputs.Add(LlamaOnnxExporter.TotalLengthInput);
        _inputNames = inputs.ToArray();
        _outputNames = outputs.ToArray();
    }

    public LlamaConfig Config { get; }
    public int AttentionBlock { get; }

    /// <summary>How this graph attends: GroupQueryAttention (the CPU runner's) or key blocks.</summary>
    public AttentionKernel Attention => _groupQuery ? AttentionKernel.GroupQuery : AttentionKernel.Blocks;

    /// <summary>The shapes every call is padded to (none on the CPU; fixed shapes on CUDA, see <see cref="BatchShapes"/>).</summary>
    public BatchShapes Shapes { get; }

    /// <summary>
    /// CUDA's default: decode calls of 32 rows (the host's default batch), or of 8 where a resident
    /// call's rows all sit in its part's first 8 slots and that call gives them the same bits, prefill
    /// calls of 8 rows of whole blocks, and the past padded to the context, so that a row's bits never
    /// depend on the call it is in.
    /// </summary>
    internal static BatchShapes CudaShapes { get; } = new(DecodeRows: 32, PrefillRows: 8, PadPrefillToBlock: true, PastToContext: true)
    {
        // On an H200 8 to 64 rows gave every row the 32-row call's bits and an 8-row call costs what a
        // 1-row one does (docs/PERFORMANCE.md, "Session 22"); checked again wherever a model loads.
        SmallDecodeRows = 8,
    };

    /// <summary>Bytes of the graph and its weights on disk (model.onnx and its .data file): what loading it costs in memory, roughly.</summary>
    public long WeightBytes { get; }

    /// <summary>"CPU" or "CUDA": the provider that actually runs the graph.</summary>
    public string ExecutionProvider { get; }

    /// <summary>Why CUDA was asked for but CPU runs, or null.</summary>
    public string? ProviderFallbackReason { get; }

    public static DecoderModel Load(string onnxPath, RunnerOptions? options = null)
    {
        options ??= new RunnerOptions();
        var so = NewSessionOptions(options, onnxPath, cudaGraph: false, out string provider, out string? fallback);
        InferenceSession session;
        try
        {
            session = new InferenceSession(onnxPath, so);
        }
        catch (OnnxRuntimeException e) when (provider == "CUDA")
        {
            fallback = $"CUDA session could not start ({ExceptionText.FirstLine(e.Message)}); running on CPU";
            provider = "CPU";
            so.Dispose();
            return Load(onnxPath, options with { UseCuda = false }) is var cpu ? cpu.WithFallback(fallback) : throw new InvalidOperationException();
        }
        var meta = session.ModelMetadata.CustomMetadataMap;
        if (!meta.TryGetValue("pipeline.config", out var configJson))
            throw new InvalidDataException($"{onnxPath} was not written by the pipeline converter (no pipeline.config metadata)");
        var config = System.Text.Json.JsonSerializer.Deserialize<LlamaConfig>(configJson)
                     ?? throw new InvalidDataException($"{onnxPath}: unreadable pipeline.config metadata");
        int block = meta.TryGetValue(LlamaOnnxExporter.AttentionBlockMetadataKey, out var b) ? int.Parse(b) : 1;
        if (provider == "CPU" && meta.TryGetValue(LlamaOnnxExporter.QuantizationMetadataKey, out var q) && q == nameof(WeightQuantization.F16))
        {
            session.Dispose();
            so.Dispose();
            // Measured: ONNX Runtime's float16 MatMul on the CPU gives a row different bits batched
            // and alone (P6 fails at once), and the CPU gains nothing from float16.
            throw new ArgumentException("--quantize f16 is for CUDA: on the CPU ONNX Runtime's float16 MatMul is not batch-invariant"
                + (fallback is null ? "" : $" ({fallback})") + "; use none, q8 or q4 on the CPU");
        }
        var model = new DecoderModel(session, config, block, WeightFileBytes(onnxPath), provider, fallback, options.Shapes);
        so.Dispose();
        try
        {
            model.ChooseResidence(options, onnxPath);
            model.CheckSmallCall();
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    /// <summary>
    /// The session options every session of a model shares; <paramref name="provider"/> says which
    /// provider was appended ("CPU" or "CUDA"), <paramref name="fallback"/> why CUDA was not.
    /// </summary>
    private static SessionOptions NewSessionOptions(RunnerOptions options, string onnxPath, bool cudaGraph, out string provider, out string? fallback)
    {
        provider = "CPU";
        fallback = null;
        int threads = IntraOpThreadsFor(options.IntraOpThreads, onnxPath);
        var so = new SessionOptions
        {
            // Basic optimisations only: fusions of the extended level replace our block-wise
            // attention and norms by kernels whose reduction order depends on the batch.
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            InterOpNumThreads = 1,
            IntraOpNumThreads = threads,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        // A small model's workers spin between parallel sections: waking a sleeping one costs more
        // than such a model's node (docs/PERFORMANCE.md, "Session 18"; see Spins).
        so.AddSessionConfigEntry("session.intra_op.allow_spinning", Spins(options, threads, WeightFileBytes(onnxPath)) ? "1" : "0");
        if (options.ProfilePrefix is { } profile)
        {
            // The prefix first: enabling passes the prefix set at that moment to ONNX Runtime.
            so.ProfileOutputPathPrefix = profile;
            so.EnableProfiling = true;
        }
        if (options.UseCuda)
        {
            try
            {
                // No TF32: fp32 matmuls in TF32 round differently from the CPU's.
                using var cuda = new OrtCUDAProviderOptions();
                cuda.UpdateOptions(new Dictionary<string, string>
                {
                    ["device_id"] = "0",
                    ["use_tf32"] = "0",
                    ["cudnn_conv_algo_search"] = "DEFAULT",
                    ["enable_cuda_graph"] = cudaGraph ? "1" : "0",
                });
                so.AppendExecutionProvider_CUDA(cuda);
                provider = "CUDA";
            }
            catch (EntryPointNotFoundException)
            {
                fallback = "CUDA execution provider unavailable: this build carries the CPU-only ONNX Runtime (build with -p:UseCuda=true for CUDA); running on CPU";
            }
            catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or TypeInitializationException)
            {
                fallback = $"CUDA execution provider unavailable ({ExceptionText.FirstLine(e.Message)}); running on CPU";
            }
        }
        return so;
    }

    /// <summary>
    /// Weights at or above this many bytes get every core as intra-op threads by default; below it
    /// two (a small model's products are too small to share among more). With sleeping workers two
    /// threads lost on small models (docs/PERFORMANCE.md, "CPU speed"); with ~100 nodes a step
    /// (GroupQueryAttention) and spinning workers they win at most points ("Session 18").
    /// </summary>
    internal const long ParallelWeightBytes = 256L << 20;

    /// <summary>
    /// The intra-op thread count: the caller's when given, else two (at most the cores there are) for
    /// a small model and every core for one whose weights pass <see cref="ParallelWeightBytes"/>. Any count gives the same
    /// bits (P6 runs 1 and 2 threads against each other).
    /// </summary>
    internal static int IntraOpThreadsFor(int requested, string onnxPath)
    {
        if (requested > 0) return requested;
        long bytes = new FileInfo(onnxPath).Length;
        var data = onnxPath + ".data";
        if (File.Exists(data)) bytes += new FileInfo(data).Length;
        return bytes >= ParallelWeightBytes ? Environment.ProcessorCount : Math.Min(2, Environment.ProcessorCount);
    }

    /// <summary>
    /// Whether intra-op workers spin: as asked, else when there is more than one (ONNX Runtime's own
    /// default). Spinning won on stories260K and the 15M shape on a Xeon pinned to two cores (15M: +21 %
    /// at one stream, +35 % at 16) and lost 4–5 % there on the 110M shape, so larger models slept until
    /// session 22; on this project's two-core machine the 110M shape gains from it too (interleaved
    /// runs: +6–18 % at 1, +10 % at 4, +3–9 % at 16, even at 64; docs/PERFORMANCE.md, "Session 22").
    /// </summary>
    internal static bool Spins(RunnerOptions options, int threads, long weightBytes) =>
        options.IntraOpSpinning ?? threads > 1;

    /// <summary>The size of a graph with its external weights (ours: model.onnx.data; Optimum's: model.onnx_data), when it has them.</summary>
    private static long WeightFileBytes(string onnxPath)
    {
        long bytes = new FileInfo(onnxPath).Length;
        foreach (var data in new[] { onnxPath + ".data", onnxPath + "_data" })
            if (File.Exists(data)) bytes += new FileInfo(data).Length;
        return bytes;
    }

    private DecoderModel WithFallback(string reason)
    {
        var model = new DecoderModel(_session, Config, AttentionBlock, WeightBytes, ExecutionProvider, reason, Shapes);
        model._memory = _memory;
        model._decodeSession = _decodeSession;
        model._smallDecodeSession = _smallDecodeSession;
        model._deviceThread = _deviceThread;
        model._serialPrefill = _serialPrefill;
        model._captureGate = _captureGate;
        model._shelf = _shelf;
        model.ResidentAttention = ResidentAttention;
        model.ResidentPhases = ResidentPhases;
        return model;
    }

    /// <summary>
    /// Runs one model call over <paramref name="rows"/>, appends their new keys and values to
    /// their caches, and writes each row's logits for its last fed token into
    /// <paramref name="logits"/> ([rows, vocab]).
    /// </summary>
    public void Step(IReadOnlyList<SequenceStep> rows, StepWorkspace workspace, Span<float> logits, StepKind kind = StepKind.Decode)
        => Step(rows, workspace, logits, kind, Shapes);

    /// <summary>
    /// A decode step (one token a row) that reports rows as their logits land: on a resident pool
    /// (<see cref="DecodesInParts"/>), each part's rows as soon as that part's call is done and its
    /// positions counted, before the next part runs, with their logits where the part's download put
    /// them (the part's own host memory: <paramref name="logits"/> is not written); otherwise every row
    /// once, after the call, in <paramref name="logits"/>. A reported row's logits and cache are final:
    /// the caller may hand them on while later parts run. If a later part fails, the step throws;
    /// reported rows stay as they are and only the rest are lost.
    /// </summary>
    public void Step(IReadOnlyList<SequenceStep> rows, StepWorkspace workspace, float[] logits, Action<ReadyRows> rowsReady)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(workspace);
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(rowsReady);
        if (DecodesInParts && FeedsOneTokenEach(rows))
        {
            StepResident(rows, workspace, logits, rowsReady);
            return;
        }
        Step(rows, workspace, logits);
        int[] all = [.. Enumerable.Range(0, rows.Count)];
        rowsReady(new ReadyRows(all, logits, all));
    }

    /// <summary>Decode steps run on a resident pool, one call per part of <see cref="BatchShapes.DecodeRows"/> slots (see the reporting <see cref="Step(IReadOnlyList{SequenceStep}, StepWorkspace, float[], Action{ReadyRows})"/>).</summary>
    public bool DecodesInParts => _memory is not null;

    private static bool MixesFreshAndContinuing(IReadOnlyList<SequenceStep> rows)
    {
        bool fresh = false, continuing = false;
        foreach (var r in rows)
            if (r.Cache.Length == 0) fresh = true; else continuing = true;
        return fresh && continuing;
    }

    /// <summary>
    /// A prefill call mixing prompts' first chunks with later ones, run as two calls: continuing
    /// rows with their past padded to the context, then fresh rows with no past
    /// (<see cref="BatchShapes.Past"/>), so a first chunk's shape never depends on what shares it.
    /// </summary>
    private void StepFreshApart(IReadOnlyList<SequenceStep> rows, StepWorkspace workspace, Span<float> logits, BatchShapes shapes)
    {
        var fresh = Enumerable.Range(0, rows.Count).Where(i => rows[i].Cache.Length == 0).ToArray();
        var continuing = Enumerable.Range(0, rows.Count).Where(i => rows[i].Cache.Length > 0).ToArray();
        StepInGroups(rows, [continuing, fresh], workspace, logits, StepKind.Prefill, shapes);
    }

    /// <summary>
    /// Whether a call that feeds several tokens to some row must be split for GroupQueryAttention:
    /// some row has a past (the kernel takes that only in a batch of one: it reads each row's past
    /// as its length minus the call's width), or the rows feed different numbers of tokens (MLAS's
    /// products give a row other bits when its width is padded: measured, a 17-token prompt padded
    /// to 18 or more differs from itself alone, and a one-token row runs MLAS's M = 1 kernel only
    /// when the call is one token wide).
    /// </summary>
    private static bool NeedsGroupQueryCalls(IReadOnlyList<SequenceStep> rows)
    {
        bool several = false, continuing = false, ragged = false;
        int width = rows[0].Tokens.Length;
        foreach (var r in rows)
        {
            several |= r.Tokens.Length > 1;
            continuing |= r.Cache.Length > 0;
            ragged |= r.Tokens.Length != width;
        }
        return several && (continuing || ragged);
    }

    /// <summary>
    /// A call GroupQueryAttention cannot take whole (<see cref="NeedsGroupQueryCalls"/>): prompts'
    /// first chunks of one width together, then each continuing row alone. Every chunk is then
    /// computed at its own width, whatever shares the call, and chunk boundaries are fixed by the
    /// prompt (PrefillScheduler), so a row's bits depend on nothing else.
    /// </summary>
    private void StepInGroupQueryCalls(IReadOnlyList<SequenceStep> rows, StepWorkspace workspace, Span<float> logits, StepKind kind, BatchShapes shapes)
    {
        var groups = Enumerable.Range(0, rows.Count).Where(i => rows[i].Cache.Length == 0)
            .GroupBy(i => rows[i].Tokens.Length).Select(sameWidth => sameWidth.ToArray()).ToList();
        groups.AddRange(Enumerable.Range(0, rows.Count).Where(i => rows[i].Cache.Length > 0).Select(i => new[] { i }));
        StepInGroups(rows, groups, workspace, logits, kind, shapes);
    }

    /// <summary>One call per group of row indices, in order, each row's logits put back in its place.</summary>
    private void StepInGroups(IReadOnlyList<SequenceStep> rows, IEnumerable<int[]> groups, StepWorkspace workspace, Span<float> logits, StepKind kind, BatchShapes shapes)
    {
        int vocab = Config.VocabSize;
        foreach (var indices in groups)
        {
            if (indices.Length == 0) continue;
            var group = indices.Select(i => rows[i]).ToArray();
            var groupLogits = new float[group.Length * vocab];
            Step(group, workspace, groupLogits, kind, shapes);
            for (int g = 0; g < indices.Length; g++)
                groupLogits.AsSpan(g * vocab, vocab).CopyTo(logits.Slice(indices[g] * vocab, vocab));
        }
    }

    /// <summary>One call padded to <paramref name="shapes"/> instead of the model's own (for probes that compare shapes).</summary>
    internal void Step(IReadOnlyList<SequenceStep> rows, StepWorkspace workspace, Span<float> logits, StepKind kind, BatchShapes shapes)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(workspace);
        ArgumentNullException.ThrowIfNull(shapes);
        if (kind == StepKind.Decode && _memory is not null && ReferenceEquals(shapes, Shapes) && FeedsOneTokenEach(rows))
        {
            StepResident(rows, workspace, logits);
            return;
        }
        if (kind == StepKind.Prefill && _serialPrefill && _deviceThread is { } device && !device.IsCurrent)
        {
            StepOnDeviceThread(device, rows, workspace, logits, kind, shapes);
            return;
        }
        if (_captureGate is { } gate && !gate.IsReadLockHeld)
        {
            // Not while a CUDA graph is being captured (see DecoderModel.Resident).
            gate.EnterReadLock();
            try { Step(rows, workspace, logits, kind, shapes); }
            finally { gate.ExitReadLock(); }
            return;
        }
        if (kind == StepKind.Prefill && shapes.PastToContext && MixesFreshAndContinuing(rows))
        {
            StepFreshApart(rows, workspace, logits, shapes);
            return;
        }
        if (_groupQuery && rows.Count > 1 && NeedsGroupQueryCalls(rows))
        {
            StepInGroupQueryCalls(rows, workspace, logits, kind, shapes);
            return;
        }
        int fixedRows = shapes.FixedRows(kind);
        if (fixedRows > 0 && rows.Count > fixedRows)
        {
            // More rows than the fixed shape holds: calls of that shape, each with its own staged past.
            int vocabSize = Config.VocabSize;
            for (int start = 0, part = 0; start < rows.Count; start += fixedRows, part++)
            {
                int count = Math.Min(fixedRows, rows.Count - start);
                var slice = rows is SequenceStep[] array ? new ArraySegment<SequenceStep>(array, start, count) : rows.Skip(start).Take(count).ToArray();
                Step(slice, workspace.Part(part), logits.Slice(start * vocabSize, count * vocabSize), kind, shapes);
            }
            return;
        }
        if (RunsOnHalfPrefill(rows, kind, shapes))
        {
            StepFreshHalf(rows, workspace, logits);
            return;
        }
        int real = rows.Count;
        if (real == 0) return;
        var c = Config;
        int vocab = c.VocabSize, hd = c.HeadDim, kvh = c.KvHeads;
        if (logits.Length < real * vocab) throw new ArgumentException("logits buffer too small", nameof(logits));

        int maxPast = 0, maxNew = 0;
        foreach (var r in rows)
        {
            if (r.Tokens.Length == 0) throw new ArgumentException("a row must feed at least one token");
            if (r.Cache.Length + r.Tokens.Length > c.SeqLen)
                throw new InvalidOperationException($"sequence would reach {r.Cache.Length + r.Tokens.Length} positions, past the context length {c.SeqLen}");
            maxPast = Math.Max(maxPast, r.Cache.Length);
            maxNew = Math.Max(maxNew, r.Tokens.Length);
        }
        // Every row's past is padded to the same whole number of attention blocks (the staged
        // stride, which may exceed what this step needs): padding only adds masked blocks. Under
        // fixed shapes (CUDA) the rows, new tokens and past are padded further, to one shape per kind.
        // GroupQueryAttention takes a batch of rows feeding several tokens only if none has a past.
        int batch = _groupQuery && maxPast > 0 && maxNew > 1 ? real : shapes.Rows(kind, real);
        maxNew = shapes.NewTokens(kind, maxNew, AttentionBlock);
        // GroupQueryAttention writes the new positions into the staged past: it must hold them too.
        // Decoding, the workspace keeps them there, the only copy (see StepWorkspace.StageHeld); a
        // prefill call's caches go on to the decode actor, so they take their positions.
        bool hold = _groupQuery && kind == StepKind.Decode && batch == real;
        if (hold) workspace.StageHeld(rows, GroupQueryStride(rows, maxPast + maxNew, kind), c);
        else if (_groupQuery) workspace.Stage(rows, GroupQueryStride(rows, maxPast + maxNew, kind), c, batch, clearTails: false);
        else workspace.Stage(rows, shapes.Past(kind, maxPast, AttentionBlock, c.SeqLen), c, batch);
        int past = workspace.PastStride;
        int total = past + maxNew;

        var ids = workspace.InputIds.Get(batch * maxNew);
        var positions = workspace.PositionIds.Get(batch * maxNew);
        // GroupQueryAttention needs no mask: each row's length (seqlens_k) says what it sees.
        var mask = workspace.AttentionMask.Get(_groupQuery ? 0 : batch * total);
        Array.Clear(ids, 0, batch * maxNew);
        Array.Clear(positions, 0, batch * maxNew);
        Array.Clear(mask);
        // Padding rows feed one token at position 0 that sees only itself: finite numbers no real row reads.
        if (!_groupQuery) for (int b = real; b < batch; b++) mask[b * total + past] = 1;
        for (int b = 0; b < real; b++)
        {
            var r = rows[b];
            var tokens = r.Tokens.Span;
            int length = r.Cache.Length;
            for (int i = 0; i < tokens.Length; i++)
            {
                ids[b * maxNew + i] = tokens[i];
                positions[b * maxNew + i] = length + i;
                if (!_groupQuery) mask[b * total + past + i] = 1;
            }
            // Padded query rows keep position 0 and see only this row's real keys.
            if (!_groupQuery) mask.AsSpan(b * total, length).Fill(1);
        }

        int pastSize = batch * kvh * past * hd;
        int fed = _newOnly ? maxNew : total, from = _newOnly ? 0 : past;
        // Outputs go straight into the workspace's buffers (no ONNX Runtime allocation, no copy out
        // of native memory): logits [batch, maxNew or 1, vocab], new keys/values [batch, kv_heads, fed, hd].
        int logitRows = _lastOnly ? 1 : maxNew;
        var outLogits = workspace.Logits.Get(batch * logitRows * vocab);
        int kvSize = batch * kvh * fed * hd;
        if (!_groupQuery) workspace.EnsureOutputs(c.Layers, kvSize);
        var values = new OrtValue[_inputNames.Length];
        var outputs = new OrtValue[_outputNames.Length];
        bool completed = false;
        try
        {
            // Tensors come from the workspace's cache (slots: inputs by index, then outputs).
            var tensors = workspace.Tensors;
            int outputSlot = _inputNames.Length;
            values[0] = tensors.Get(0, ids, 0, batch * maxNew, [batch, maxNew]);
            values[1] = _groupQuery
                ? GroupQueryLengths(rows, workspace, batch, maxNew, maxPast == 0 ? maxNew : past, values)
                : tensors.Get(1, mask, 0, batch * total, [batch, total]);
            values[2] = tensors.Get(2, positions, 0, batch * maxNew, [batch, maxNew]);
            outputs[0] = tensors.Get(outputSlot, outLogits, 0, batch * logitRows * vocab, [batch, logitRows, vocab]);
            for (int l = 0; l < c.Layers; l++)
            {
                values[3 + 2 * l] = tensors.Get(3 + 2 * l, workspace.Keys(l), 0, pastSize, [batch, kvh, past, hd]);
                values[4 + 2 * l] = tensors.Get(4 + 2 * l, workspace.Values(l), 0, pastSize, [batch, kvh, past, hd]);
                if (_groupQuery)
                {
                    // Present is the past's own memory: the kernel writes the new positions in place.
                    outputs[1 + 2 * l] = tensors.Get(outputSlot + 1 + 2 * l, workspace.Keys(l), 0, pastSize, [batch, kvh, past, hd]);
                    outputs[2 + 2 * l] = tensors.Get(outputSlot + 2 + 2 * l, workspace.Values(l), 0, pastSize, [batch, kvh, past, hd]);
                }
                else
                {
                    outputs[1 + 2 * l] = tensors.Get(outputSlot + 1 + 2 * l, workspace.NewKeys(l), 0, kvSize, [batch, kvh, fed, hd]);
                    outputs[2 + 2 * l] = tensors.Get(outputSlot + 2 + 2 * l, workspace.NewValues(l), 0, kvSize, [batch, kvh, fed, hd]);
                }
            }

            if (_lastOnly)
            {
                // One-hot per row: its last fed token (a padding row's only one, at 0).
                var pick = workspace.LastPosition.Get(batch * maxNew);
                Array.Clear(pick, 0, batch * maxNew);
                for (int b = 0; b < batch; b++) pick[b * maxNew + (b < real ? rows[b].Tokens.Length - 1 : 0)] = 1f;
                int pickSlot = _groupQuery ? values.Length - 2 : values.Length - 1;
                values[pickSlot] = tensors.Get(pickSlot, pick, 0, batch * maxNew, [batch, 1, maxNew]);
            }
            long runStarted = System.Diagnostics.Stopwatch.GetTimestamp();
            _session.Run(_runOptions, _inputNames, values, _outputNames, outputs);
            long runEnded = System.Diagnostics.Stopwatch.GetTimestamp();
            for (int b = 0; b < real; b++)
            {
                int last = _lastOnly ? 0 : rows[b].Tokens.Length - 1;
                outLogits.AsSpan((b * logitRows + last) * vocab, vocab).CopyTo(logits.Slice(b * vocab, vocab));
            }
            if (hold) workspace.HoldAfterCall(rows);
            for (int l = 0; _groupQuery && !hold && l < c.Layers; l++)
            {
                // Each row's new positions sit in its staged row, after its past.
                ReadOnlySpan<float> stagedKeys = workspace.Keys(l).AsSpan(0, pastSize);
                ReadOnlySpan<float> stagedValues = workspace.Values(l).AsSpan(0, pastSize);
                for (int b = 0; b < real; b++)
                    rows[b].Cache.Append(stagedKeys, stagedValues, l, b, past, rows[b].Cache.Length, rows[b].Tokens.Length, l == c.Layers - 1);
            }
            for (int l = 0; !_groupQuery && l < c.Layers; l++)
            {
                ReadOnlySpan<float> presentKeys = workspace.NewKeys(l).AsSpan(0, kvSize);
                ReadOnlySpan<float> presentValues = workspace.NewValues(l).AsSpan(0, kvSize);
                for (int b = 0; b < real; b++)
                {
                    int length = rows[b].Cache.Length, count = rows[b].Tokens.Length;
                    rows[b].Cache.Append(presentKeys, presentValues, l, b, fed, from, count, l == c.Layers - 1);
                    // The same positions into the staged row, so the next step need not copy it.
                    for (int h = 0; h < kvh; h++)
                    {
                        int src = ((b * kvh + h) * fed + from) * hd, dst = ((b * kvh + h) * past + length) * hd;
                        if (length + count <= past)
                        {
                            presentKeys.Slice(src, count * hd).CopyTo(workspace.Keys(l).AsSpan(dst));
                            presentValues.Slice(src, count * hd).CopyTo(workspace.Values(l).AsSpan(dst));
                        }
                    }
                }
            }
            for (int b = 0; !hold && b < real; b++) workspace.Advance(b, rows[b].Cache.Length);
            if (kind == StepKind.Prefill) ResidentPhases?.AddPrefill(runEnded - runStarted, System.Diagnostics.Stopwatch.GetTimestamp() - runEnded);
            completed = true;
        }
        finally
        {
            // The tensors are the workspace's cache's, kept for the next call.
            if (!completed) workspace.Forget();
        }
    }

    /// <summary>Positions a GroupQueryAttention staged stride is rounded up to (see <see cref="GroupQueryStride"/>).</summary>
    internal const int GroupQueryStrideUnit = 16;

    /// <summary>
    /// The staged past's stride under GroupQueryAttention, in whole <see cref="GroupQueryStrideUnit"/>s,
    /// at most the context. For decode calls it is the rows' cache capacity (what their requests
    /// reserved), not their length: a stride that followed the lengths changed every block of steps,
    /// and each change laid the whole batch out again in a larger array (fresh memory, every row's
    /// past copied from its cache); one that follows the capacities changes only when a row with a
    /// larger reservation joins. A prefill call's rows are copied in anyway, so it takes what it
    /// needs. The kernel reads each row's own length (seqlens_k) and never the stride's tail, which
    /// is why that tail is not cleared either (its pages stay untouched until written).
    /// </summary>
    private int GroupQueryStride(IReadOnlyList<SequenceStep> rows, int needed, StepKind kind)
    {
        int widest = needed;
        if (kind == StepKind.Decode) foreach (var r in rows) widest = Math.Max(widest, r.Cache.Capacity);
        return Math.Min(Config.SeqLen, (widest + GroupQueryStrideUnit - 1) / GroupQueryStrideUnit * GroupQueryStrideUnit);
    }

    /// <summary>
    /// GroupQueryAttention's lengths: seqlens_k (each row's length after the call, minus one,
    /// counting the call's full width so that a shorter prompt's padding tokens are computed, as
    /// finite numbers no real position reads, rather than left as whatever the buffer held) into
    /// slot 1, and total_sequence_length (<paramref name="totalLength"/>: the width when no row has
    /// a past, which the kernel reads as every row starting its prompt; else the staged stride)
    /// into the last input slot.
    /// </summary>
    private static OrtValue GroupQueryLengths(IReadOnlyList<SequenceStep> rows, StepWorkspace workspace, int batch, int width, int totalLength, OrtValue[] values)
    {
        var lengths = workspace.SeqlensK.Get(batch + 1);
        for (int b = 0; b < batch; b++) lengths[b] = (b < rows.Count ? rows[b].Cache.Length : 0) + width - 1;
        lengths[batch] = totalLength;
        values[^1] = workspace.Tensors.Get(values.Length - 1, lengths, batch, 1, [1]);
        return workspace.Tensors.Get(1, lengths, 0, batch, [batch]);
    }

    public void Dispose()
    {
        try { _session.EndProfiling(); } catch (OnnxRuntimeException) { }
        try { _decodeSession?.EndProfiling(); } catch (OnnxRuntimeException) { }
        try { _smallDecodeSession?.EndProfiling(); } catch (OnnxRuntimeException) { }
        try { _halfPrefillSession?.EndProfiling(); } catch (OnnxRuntimeException) { }
        _deviceThread?.Dispose();
        _shelf?.Dispose(); // bindings of the decode session: before it
        _session.Dispose();
        _decodeSession?.Dispose();
        _smallDecodeSession?.Dispose();
        _halfPrefillSession?.Dispose();
        _halfPrefillRun?.Dispose();
        _prefillBlocks?.Dispose(); // device memory: before the memory itself
        _captureGate?.Dispose();
        _runOptions.Dispose();
        _memory?.Dispose();
    }
}
