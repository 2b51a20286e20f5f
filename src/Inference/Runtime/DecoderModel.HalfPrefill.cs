using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime.Resident;

namespace Pipeline.Inference.Runtime;

// Prompts' first chunks on the float16 GroupQueryAttention graph, beside the resident decode calls.
internal sealed partial class DecoderModel
{
    // The float16 graph's session for prefill calls whose rows all start their prompts: the fixed
    // prefill rows, no past. Null where decode calls do not run that graph, or HalfPrefill is off.
    private InferenceSession? _halfPrefillSession;
    private RunOptions? _halfPrefillRun;
    private string[] _halfPrefillInputs = [];
    private string[] _halfPrefillOutputs = [];
    // Where those calls leave their presents (in the pool's memory), for the pool to take on the device.
    private PrefillBlockShelf? _prefillBlocks;

    /// <summary>Prefill blocks made so far, and how many are back on their shelf (for tests and reports).</summary>
    internal (int Made, int Free) PrefillBlocks => (_prefillBlocks?.Made ?? 0, _prefillBlocks?.Free ?? 0);

    /// <summary>Whether prompts' first chunks run on the float16 GroupQueryAttention graph (see <see cref="RunnerOptions.HalfPrefill"/>).</summary>
    public bool HalfPrefill => _halfPrefillSession is not null;

    /// <remarks>
    /// Why: on an H200 a first chunk on the model's own (block, float32-attention) graph took ~14 ms
    /// for 8 rows of 64 tokens of the 110M shape, plus 10–13 ms of host copies, then ~1.5 ms per
    /// sequence to upload it into the pool; the float16 graph has 18 nodes a layer and its presents
    /// never leave the device.
    /// Its shape is fixed by the batch shapes (prefill rows, block-padded width, no past), so a row's
    /// bits do not depend on what shares the call, as P6 on CUDA checks. A third session: the weights
    /// load once more (docs/PERFORMANCE.md).
    /// </remarks>
    private void OpenHalfPrefillSession(RunnerOptions options, string graphPath)
    {
        using var so = NewSessionOptions(options, graphPath, cudaGraph: false, out _, out _);
        so.AddFreeDimensionOverrideByName("batch_size", Shapes.PrefillRows);
        so.AddFreeDimensionOverrideByName("past_sequence_length", 0);
        _halfPrefillSession = new InferenceSession(graphPath, so);
        _prefillBlocks = new PrefillBlockShelf(_memory!, Config, Shapes.PrefillRows, AttentionBlock);
        _halfPrefillRun = new RunOptions();
        var inputs = new List<string> { "input_ids", "position_ids" };
        var outputs = new List<string> { "logits" };
        for (int l = 0; l < Config.Layers; l++)
        {
            inputs.Add($"past_key_values.{l}.key");
            inputs.Add($"past_key_values.{l}.value");
            outputs.Add($"{LlamaOnnxExporter.PresentPrefix}{l}.key");
            outputs.Add($"{LlamaOnnxExporter.PresentPrefix}{l}.value");
        }
        inputs.Add(LlamaOnnxExporter.LastPositionInput);
        inputs.Add(LlamaOnnxExporter.SeqlensInput);
        inputs.Add(LlamaOnnxExporter.TotalLengthInput);
        _halfPrefillInputs = inputs.ToArray();
        _halfPrefillOutputs = outputs.ToArray();
    }

    private bool RunsOnHalfPrefill(IReadOnlyList<SequenceStep> rows, StepKind kind, BatchShapes shapes)
    {
        if (_halfPrefillSession is null || kind != StepKind.Prefill || !ReferenceEquals(shapes, Shapes) || rows.Count > Shapes.PrefillRows) return false;
        foreach (var r in rows)
            if (r.Cache.Length != 0 || r.Tokens.Length > AttentionBlock) return false;
        return rows.Count > 0;
    }

    /// <summary>
    /// One prefill call of prompts' first chunks on the float16 graph: the fixed rows, every row fed
    /// the block-padded width (padding tokens after a row's prompt are computed as finite numbers no
    /// real position reads: the attention is causal). The presents stay in a <see cref="PrefillBlock"/>
    /// in the pool's memory: each row's cache holds its positions there, so a resident pool takes them
    /// with one copy on the device; a reader of the cache has them written back (widened, exactly).
    /// </summary>
    private void StepFreshHalf(IReadOnlyList<SequenceStep> rows, StepWorkspace workspace, Span<float> logits)
    {
        var c = Config;
        int real = rows.Count, batch = Shapes.Rows(StepKind.Prefill, real), vocab = c.VocabSize, kvh = c.KvHeads, hd = c.HeadDim, layers = c.Layers;
        if (logits.Length < real * vocab) throw new ArgumentException("logits buffer too small", nameof(logits));
        int maxNew = 0;
        foreach (var r in rows)
        {
            if (r.Tokens.Length == 0) throw new ArgumentException("a row must feed at least one token");
            if (r.Tokens.Length > c.SeqLen)
                throw new InvalidOperationException($"sequence would reach {r.Tokens.Length} positions, past the context length {c.SeqLen}");
            maxNew = Math.Max(maxNew, r.Tokens.Length);
        }
        int width = Shapes.NewTokens(StepKind.Prefill, maxNew, AttentionBlock);
        var ids = workspace.InputIds.Get(batch * width);
        var positions = workspace.PositionIds.Get(batch * width);
        var pick = workspace.LastPosition.Get(batch * width);
        var lengths = workspace.SeqlensK.Get(batch + 1);
        Array.Clear(ids, 0, batch * width);
        Array.Clear(positions, 0, batch * width);
        Array.Clear(pick, 0, batch * width);
        for (int b = 0; b < batch; b++)
        {
            var tokens = b < real ? rows[b].Tokens.Span : default;
            for (int i = 0; i < tokens.Length; i++)
            {
                ids[b * width + i] = tokens[i];
                positions[b * width + i] = i;
            }
            pick[b * width + Math.Max(tokens.Length - 1, 0)] = 1f;
            lengths[b] = width - 1;
        }
        lengths[batch] = width;

        if (width != _prefillBlocks!.Width) throw new InvalidOperationException($"a first chunk {width} wide does not fit the prefill blocks ({_prefillBlocks.Width})");
        int perLayer = checked(batch * kvh * width * hd);
        // The presents stay where the model runs, in a block the rows' caches hold until a resident
        // pool takes them on the device (or a reader has them written back).
        var block = _prefillBlocks.Rent();
        var outLogits = workspace.Logits.Get(batch * vocab);
        var cpu = OrtMemoryInfo.DefaultInstance;
        var values = new OrtValue[_halfPrefillInputs.Length];
        var outputs = new OrtValue[_halfPrefillOutputs.Length];
        long started = System.Diagnostics.Stopwatch.GetTimestamp(), ran;
        try
        {
            values[0] = OrtValue.CreateTensorValueFromMemory(cpu, ids.AsMemory(0, batch * width), [batch, width]);
            values[1] = OrtValue.CreateTensorValueFromMemory(cpu, positions.AsMemory(0, batch * width), [batch, width]);
            long layerBytes = (long)perLayer * sizeof(ushort);
            for (int l = 0; l < layers; l++)
            {
                // No past: zero positions (the pointer is any valid one; nothing is read).
                values[2 + 2 * l] = OrtValue.CreateTensorValueWithData(_memory!.Info, TensorElementType.Float16, [batch, kvh, 0, hd], block.Pointer, 0);
                values[3 + 2 * l] = OrtValue.CreateTensorValueWithData(_memory.Info, TensorElementType.Float16, [batch, kvh, 0, hd], block.Pointer, 0);
                outputs[1 + 2 * l] = OrtValue.CreateTensorValueWithData(_memory.Info, TensorElementType.Float16, [batch, kvh, width, hd], block.Slice(2 * l), layerBytes);
                outputs[2 + 2 * l] = OrtValue.CreateTensorValueWithData(_memory.Info, TensorElementType.Float16, [batch, kvh, width, hd], block.Slice(2 * l + 1), layerBytes);
            }
            values[^3] = OrtValue.CreateTensorValueFromMemory(cpu, pick.AsMemory(0, batch * width), [batch, 1, width]);
            values[^2] = OrtValue.CreateTensorValueFromMemory(cpu, lengths.AsMemory(0, batch), [batch]);
            values[^1] = OrtValue.CreateTensorValueFromMemory(cpu, lengths.AsMemory(batch, 1), [1]);
            outputs[0] = OrtValue.CreateTensorValueFromMemory(cpu, outLogits.AsMemory(0, batch * vocab), [batch, 1, vocab]);
            // Run returns once the logits are on the host, which the last layer's presents precede on the stream.
            _halfPrefillSession!.Run(_halfPrefillRun, _halfPrefillInputs, values, _halfPrefillOutputs, outputs);
            ran = System.Diagnostics.Stopwatch.GetTimestamp();
            for (int b = 0; b < real; b++) block.Hold(rows[b].Cache, b, rows[b].Tokens.Length);
        }
        finally
        {
            foreach (var v in values) v?.Dispose();
            foreach (var v in outputs) v?.Dispose();
            if (block.Held == 0) _prefillBlocks.Return(block);
        }
        outLogits.AsSpan(0, real * vocab).CopyTo(logits);
        ResidentPhases?.AddPrefill(ran - started, System.Diagnostics.Stopwatch.GetTimestamp() - ran);
    }
}
