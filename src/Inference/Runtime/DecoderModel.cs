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
internal sealed class DecoderModel : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly bool _newOnly;

    private DecoderModel(InferenceSession session, LlamaConfig config, int attentionBlock, string provider, string? fallbackReason)
    {
        _session = session;
        Config = config;
        AttentionBlock = attentionBlock;
        ExecutionProvider = provider;
        ProviderFallbackReason = fallbackReason;
        var inputs = new List<string> { "input_ids", "attention_mask", "position_ids" };
        var outputs = new List<string> { "logits" };
        // Each sequence keeps its own cache, so only the new positions are needed: the runner's
        // graph gives them alone (new_key_values.*); an Optimum-layout model gives past + new.
        _newOnly = session.OutputMetadata.ContainsKey("new_key_values.0.key");
        var kind = _newOnly ? "new_key_values" : "present";
        for (int l = 0; l < config.Layers; l++)
        {
            inputs.Add($"past_key_values.{l}.key");
            inputs.Add($"past_key_values.{l}.value");
            outputs.Add($"{kind}.{l}.key");
            outputs.Add($"{kind}.{l}.value");
        }
        _inputNames = inputs.ToArray();
        _outputNames = outputs.ToArray();
    }

    public LlamaConfig Config { get; }
    public int AttentionBlock { get; }

    /// <summary>"CPU" or "CUDA": the provider that actually runs the graph.</summary>
    public string ExecutionProvider { get; }

    /// <summary>Why CUDA was asked for but CPU runs, or null.</summary>
    public string? ProviderFallbackReason { get; }

    public static DecoderModel Load(string onnxPath, RunnerOptions? options = null)
    {
        options ??= new RunnerOptions();
        string provider = "CPU";
        string? fallback = null;
        var so = new SessionOptions
        {
            // Basic optimisations only: fusions of the extended level replace our block-wise
            // attention and norms by kernels whose reduction order depends on the batch.
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            InterOpNumThreads = 1,
            IntraOpNumThreads = options.IntraOpThreads,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
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
        return new DecoderModel(session, config, block, provider, fallback);
    }

    private DecoderModel WithFallback(string reason) => new(_session, Config, AttentionBlock, ExecutionProvider, reason);

    /// <summary>
    /// Runs one model call over <paramref name="rows"/>, appends their new keys and values to
    /// their caches, and writes each row's logits for its last fed token into
    /// <paramref name="logits"/> ([rows, vocab]).
    /// </summary>
    public void Step(IReadOnlyList<SequenceStep> rows, StepWorkspace workspace, Span<float> logits)
    {
        int batch = rows.Count;
        if (batch == 0) return;
        var c = Config;
        int vocab = c.VocabSize, hd = c.HeadDim, kvh = c.KvHeads;
        if (logits.Length < batch * vocab) throw new ArgumentException("logits buffer too small", nameof(logits));

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
        // stride, which may exceed what this step needs): padding only adds masked blocks.
        workspace.Stage(rows, (maxPast + AttentionBlock - 1) / AttentionBlock * AttentionBlock, AttentionBlock, c);
        int past = workspace.PastStride;
        int total = past + maxNew;

        var ids = StepWorkspace.Ensure(ref workspace.InputIds, batch * maxNew);
        var positions = StepWorkspace.Ensure(ref workspace.PositionIds, batch * maxNew);
        var mask = StepWorkspace.Ensure(ref workspace.AttentionMask, batch * total);
        Array.Clear(ids, 0, batch * maxNew);
        Array.Clear(positions, 0, batch * maxNew);
        Array.Clear(mask, 0, batch * total);
        for (int b = 0; b < batch; b++)
        {
            var r = rows[b];
            var tokens = r.Tokens.Span;
            int length = r.Cache.Length;
            for (int i = 0; i < tokens.Length; i++)
            {
                ids[b * maxNew + i] = tokens[i];
                positions[b * maxNew + i] = length + i;
                mask[b * total + past + i] = 1;
            }
            // Padded query rows keep position 0 and see only this row's real keys.
            mask.AsSpan(b * total, length).Fill(1);
        }

        int pastSize = batch * kvh * past * hd;
        var values = new List<OrtValue>(_inputNames.Length);
        bool completed = false;
        try
        {
            values.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, ids.AsMemory(0, batch * maxNew), [batch, maxNew]));
            values.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, mask.AsMemory(0, batch * total), [batch, total]));
            values.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, positions.AsMemory(0, batch * maxNew), [batch, maxNew]));
            for (int l = 0; l < c.Layers; l++)
            {
                var keys = workspace.Keys(l);
                var vals = workspace.Values(l);
                values.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, keys.AsMemory(0, pastSize), [batch, kvh, past, hd]));
                values.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, vals.AsMemory(0, pastSize), [batch, kvh, past, hd]));
            }

            using var runOptions = new RunOptions();
            using var outputs = _session.Run(runOptions, _inputNames, values, _outputNames);
            var allLogits = outputs[0].GetTensorDataAsSpan<float>();
            for (int b = 0; b < batch; b++)
            {
                int last = rows[b].Tokens.Length - 1;
                allLogits.Slice((b * maxNew + last) * vocab, vocab).CopyTo(logits.Slice(b * vocab, vocab));
            }
            for (int l = 0; l < c.Layers; l++)
            {
                var presentKeys = outputs[1 + 2 * l].GetTensorDataAsSpan<float>();
                var presentValues = outputs[2 + 2 * l].GetTensorDataAsSpan<float>();
                int fed = _newOnly ? maxNew : total, from = _newOnly ? 0 : past;
                for (int b = 0; b < batch; b++)
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
            for (int b = 0; b < batch; b++) workspace.Advance(b, rows[b].Cache.Length);
            completed = true;
        }
        finally
        {
            if (!completed) workspace.Forget();
            foreach (var v in values) v.Dispose();
        }
    }

    public void Dispose()
    {
        try { _session.EndProfiling(); } catch (OnnxRuntimeException) { }
        _session.Dispose();
    }
}
