using Google.Protobuf;
using Pipeline.Inference.Models;
using Pipeline.Inference.Models.Sources;
using Pipeline.Inference.Onnx.Schema;
using static Pipeline.Inference.Onnx.OnnxGraphBuilder;
using DataType = Pipeline.Inference.Onnx.Schema.TensorProto.Types.DataType;

namespace Pipeline.Inference.Onnx;

/// <summary>
/// Turns Llama weights into an ONNX decoder graph with a KV cache, in the Hugging Face Optimum
/// decoder layout: inputs <c>input_ids</c>, <c>attention_mask</c>, <c>position_ids</c>,
/// <c>past_key_values.{i}.key/.value</c>; outputs <c>logits</c> and <c>present.{i}.key/.value</c>.
/// The runner's own graph (no Optimum outputs) gives <c>new_key_values.{i}.key/.value</c> instead
/// of <c>present</c>, and logits for each row's last fed position only ([batch, 1, vocab]).
/// </summary>
/// <remarks>
/// Attention is computed in fixed-size key blocks (<see cref="AttentionBlock"/> keys each): every
/// GEMM inside attention has the same shape whatever the batch or the padded key length, and the
/// per-block partial sums are combined by a sequential CumSum. A sequence's reductions therefore
/// see the same numbers in the same order alone or in a ragged batch, so its logits are
/// bit-identical either way, provided the caller starts the new keys on a block boundary (the
/// past length is a multiple of the block). Padding keys (mask 0) contribute exact zeros.
/// </remarks>
public static partial class LlamaOnnxExporter
{
    /// <summary>Bump when the graph changes in a way the assembly identity would not show.</summary>
    public const string ConverterVersion = "llama-onnx-14";

    /// <summary>The runner's graph's one-hot input that picks each row's position for the classifier.</summary>
    public const string LastPositionInput = "last_position";
    /// <summary>GroupQueryAttention graphs: each row's length after the call minus one, int32 [batch].</summary>
    public const string SeqlensInput = "seqlens_k";
    /// <summary>GroupQueryAttention graphs: the call's total length, int32 [1].</summary>
    public const string TotalLengthInput = "total_sequence_length";
    /// <summary>GroupQueryAttention graphs: outputs <c>present.{layer}.key|value</c>, the staged past with this call's positions written in.</summary>
    public const string PresentPrefix = "present.";
    public const string AttentionMetadataKey = "pipeline.attention";
    public const int AttentionBlock = 64;
    public const long IrVersion = 8;     // ONNX 1.10+: accepted by ONNX Runtime 1.31
    public const long OpsetVersion = 17; // standard ai.onnx operators only

    public const string AttentionBlockMetadataKey = "pipeline.attention_block";
    public const string QuantizationMetadataKey = "pipeline.quantization";
    private const string ContribDomain = "com.microsoft";

    /// <summary>
    /// MatMulNBits' accuracy_level 4: activations quantized to int8 per block of 32 of each row, int8
    /// dot products. Its 8-bit kernel gives a row the same bits alone or batched (P6 on quantized
    /// models); the float-compute level (0/1) does not (its batch-1 kernel differs from the GEMM).
    /// </summary>
    private const long QuantizedAccuracyLevel = 4;

    /// <summary>
    /// Weights above this many bytes go to an external-data file. Protobuf cannot serialize a message
    /// over 2 GB; and ONNX Runtime maps external data and keeps only its prepacked copies of the
    /// projections resident, where inline weights stay in memory beside them: a served 110M model
    /// idled at 1,209 MB inline and 536 MB with external data, at the same speed (docs/PERFORMANCE.md,
    /// "Memory"). Small models (the embedded one) stay in one file.
    /// </summary>
    public const long ExternalDataThresholdBytes = 64L << 20;

    /// <param name="optimumOutputs">
    /// True for an exported model: <c>present.*</c> outputs (past + new, the Optimum layout) and any
    /// past length. False for the runner's own graph: only the new positions come out
    /// (<c>new_key_values.*</c>), so the past is never copied, and the past must be whole blocks; and
    /// logits come for each row's last fed position only.
    /// </param>
    internal static ModelProto Export(LlamaWeights weights, bool optimumOutputs = true)
    {
        using var source = new LlamaWeightsSource(weights);
        return Export(source, optimumOutputs, externalData: null);
    }

    /// <summary>
    /// Builds the graph, reading one tensor at a time from <paramref name="weights"/>; with
    /// <paramref name="externalData"/> every weight is streamed there instead of kept inline.
    /// </summary>
    internal static ModelProto Export(IWeightSource weights, bool optimumOutputs, OnnxExternalData? externalData,
        WeightQuantization quantization = WeightQuantization.None, AttentionKernel attention = AttentionKernel.Blocks)
    {
        var c = weights.Config;
        c.Validate();
        // The fused kernel only in the runner's graph, and only for head sizes it accepts.
        bool groupQuery = UsesGroupQuery(c, optimumOutputs, attention);
        // With float16 weights the fused attention runs in float16 too: CUDA's GroupQueryAttention
        // takes only float16 (or bfloat16), so its queries, keys, values and pasts are float16 and
        // its output feeds the float16 output projection directly (float32 everywhere else).
        bool halfAttention = groupQuery && quantization == WeightQuantization.F16;
        var pastType = halfAttention ? DataType.Float16 : DataType.Float;
        var g = new OnnxGraphBuilder("llama_decoder") { ExternalData = externalData };
        int hd = c.HeadDim, half = hd / 2;

        var inputIds = g.Input("input_ids", DataType.Int64, "batch_size", "sequence_length");
        var attentionMask = groupQuery ? null : g.Input("attention_mask", DataType.Int64, "batch_size", "total_sequence_length");
        var positionIds = g.Input("position_ids", DataType.Int64, "batch_size", "sequence_length");
        var pastKeys = new string[c.Layers];
        var pastValues = new string[c.Layers];
        for (int l = 0; l < c.Layers; l++)
        {
            pastKeys[l] = g.Input($"past_key_values.{l}.key", pastType, "batch_size", c.KvHeads, "past_sequence_length", hd);
            pastValues[l] = g.Input($"past_key_values.{l}.value", pastType, "batch_size", c.KvHeads, "past_sequence_length", hd);
        }
        // The runner's graph: which fed position of each row reaches the classifier, one-hot
        // ([B, 1, S]: 1 at the row's last fed token), so a prefill chunk runs one row through the
        // final norm and the classifier instead of all of them, and returns one row of logits.
        var lastPosition = optimumOutputs ? null : g.Input(LastPositionInput, DataType.Float, "batch_size", 1, "sequence_length");
        // GroupQueryAttention's own inputs: each row's length after this call, minus one, and the
        // call's total length (the fed length when every row starts a prompt, else the past's stride).
        var seqlensK = groupQuery ? g.Input(SeqlensInput, DataType.Int32, "batch_size") : null;
        var totalLength = groupQuery ? g.Input(TotalLengthInput, DataType.Int32, 1) : null;
        var blocks = groupQuery ? null : BlockPrelude.Build(g, c, inputIds, attentionMask!, pastKeys[0]);


        // Rotary embedding as run.c does it, on interleaved pairs: x·cos + (x·R)·sin, where R maps
        // each pair (a, b) to (-b, a). The tables repeat each pair's cos and sin twice; theta and any
        // frequency scaling are folded into them, so the graph is the same for every RoPE variant.
        var inverseFrequencies = RopeInverseFrequencies(weights);
        string cos = "", sin = "", rotation = "", cosHalf = "", sinHalf = "";
        if (groupQuery)
        {
            // ONNX Runtime's RotaryEmbedding (interleaved pairs) reads one cos and sin per pair.
            var cosPairs = new float[c.SeqLen * half];
            var sinPairs = new float[c.SeqLen * half];
            for (int pos = 0; pos < c.SeqLen; pos++)
                for (int p = 0; p < half; p++)
                {
                    float val = pos * inverseFrequencies[p];
                    cosPairs[pos * half + p] = MathF.Cos(val);
                    sinPairs[pos * half + p] = MathF.Sin(val);
                }
            cosHalf = halfAttention ? g.WeightHalf("rope_cos", cosPairs, c.SeqLen, half) : g.Weight("rope_cos", cosPairs, c.SeqLen, half);
            sinHalf = halfAttention ? g.WeightHalf("rope_sin", sinPairs, c.SeqLen, half) : g.Weight("rope_sin", sinPairs, c.SeqLen, half);
        }
        else
        {
            var cosTable = new float[c.SeqLen * hd];
            var sinTable = new float[c.SeqLen * hd];
            for (int pos = 0; pos < c.SeqLen; pos++)
                for (int p = 0; p < half; p++)
                {
                    float val = pos * inverseFrequencies[p];
                    cosTable[pos * hd + 2 * p] = cosTable[pos * hd + 2 * p + 1] = MathF.Cos(val);
                    sinTable[pos * hd + 2 * p] = sinTable[pos * hd + 2 * p + 1] = MathF.Sin(val);
                }
            var rotate = new float[hd * hd];
            for (int p = 0; p < half; p++)
            {
                rotate[(2 * p + 1) * hd + 2 * p] = -1f; // out[2p]   = -x[2p+1]
                rotate[(2 * p) * hd + 2 * p + 1] = 1f;  // out[2p+1] =  x[2p]
            }
            rotation = g.Weight("rope_rotate", rotate, hd, hd);
            cos = g.Node("Unsqueeze", [g.Node("Gather", [g.Weight("rope_cos", cosTable, c.SeqLen, hd), positionIds]), g.ConstInt64(2)], "cos");
            sin = g.Node("Unsqueeze", [g.Node("Gather", [g.Weight("rope_sin", sinTable, c.SeqLen, hd), positionIds]), g.ConstInt64(2)], "sin");
        }

        var embedTable = weights.Read(WeightRole.TokenEmbedding, 0);
        var x = g.Node("Gather", [halfAttention ? g.WeightHalf("embed_tokens_f16", embedTable, c.VocabSize, c.Dim)
            : g.Weight("embed_tokens", embedTable, c.VocabSize, c.Dim), inputIds], "embedding");
        float eps = c.RmsNormEpsilon;

        // The float16 decode graph keeps its residual stream float16 (as float16 inference does
        // elsewhere), adds each residual inside the next norm (one node for Add and norm), feeds q, k
        // and v to the attention as one packed product that rotates and appends them itself, and
        // casts only the final hidden state: every node is a kernel launch, and a decode step of a
        // small model is made of launches (docs/PERFORMANCE.md).
        // The float32 GroupQueryAttention graph (the CPU's) takes the same fusions, for the same
        // reason: a small model's CPU step is ONNX Runtime's per-node dispatch.
        string NormWeight(string name, float[] values) => halfAttention ? g.WeightHalf(name + "_f16", values, c.Dim) : g.Weight(name, values, c.Dim);
        string? pendingResidual = null;
        // GroupQueryAttention rotates only heads of a multiple of 16, on CUDA and on the CPU (tiny
        // models keep the rotary nodes).
        bool rotaryInside = groupQuery && hd % 16 == 0;
        // Queries, keys and values straight out of a float16 product, where no bias or per-head norm comes between.
        bool halfProjections = halfAttention && !c.QkNorm && !c.AttentionBias;
        // The one q/k/v product goes to the attention whole where nothing comes between.
        bool packed = rotaryInside && !c.QkNorm && !c.AttentionBias;
        for (int l = 0; l < c.Layers; l++)
        {
            string P(string n) => $"layers.{l}.{n}";
            string xn;
            var attnNorm = NormWeight(P("attn_norm"), weights.Read(WeightRole.AttentionNorm, l));
            if (pendingResidual is { } add)
                (xn, x) = SkipRmsNorm(g, x, add, attnNorm, eps, P("attn_norm"));
            else
                xn = RmsNorm(g, x, attnNorm, eps, P("attn_norm"), groupQuery);
            // q, k and v in one MatMul over [dim, q_dim + 2·kv_dim], split after: one node instead of three.
            var qkv = Projections(g, weights, xn, l, c.Dim, quantization, P("qkv"), P("wqkv"),
                [(WeightRole.Wq, c.AttentionBias ? WeightRole.QBias : null, c.QDim),
                 (WeightRole.Wk, c.AttentionBias ? WeightRole.KBias : null, c.KvDim),
                 (WeightRole.Wv, c.AttentionBias ? WeightRole.VBias : null, c.KvDim)],
                inputIsHalf: halfAttention, keepHalf: halfProjections, split: !packed);
            // Packed: the one product [B, S, q_dim + 2·kv_dim] goes to the attention as it is.
            string q = qkv[0], k = packed ? "" : qkv[1], v = packed ? "" : qkv[2];
            string newKey = "", newValue = "", qr = "";
            var perm0213 = Ints("perm", 0L, 2, 1, 3);
            if (groupQuery)
            {
                if (c.QkNorm)
                {
                    // Qwen3: each head's query and key RMS-normalised over head_dim before RoPE.
                    q = g.Node("Reshape", [RmsNorm(g, g.Node("Reshape", [q, g.ConstInt64(0, 0, c.Heads, hd)]), g.Weight(P("q_norm"), weights.Read(WeightRole.QNorm, l), hd), eps, P("q_norm"), true), g.ConstInt64(0, 0, c.QDim)]);
                    k = g.Node("Reshape", [RmsNorm(g, g.Node("Reshape", [k, g.ConstInt64(0, 0, c.KvHeads, hd)]), g.Weight(P("k_norm"), weights.Read(WeightRole.KNorm, l), hd), eps, P("k_norm"), true), g.ConstInt64(0, 0, c.KvDim)]);
                }
                if (halfAttention && !halfProjections)
                {
                    q = g.Node("Cast", [q], P("q_f16"), null, Attr("to", (long)DataType.Float16));
                    k = g.Node("Cast", [k], P("k_f16"), null, Attr("to", (long)DataType.Float16));
                    v = g.Node("Cast", [v], P("v_f16"), null, Attr("to", (long)DataType.Float16));
                }
                // Float32 attention: one rotary node per projection, on [B, S, heads·hd] as
                // GroupQueryAttention takes it. Float16: the attention rotates them itself where it can.
                if (!rotaryInside)
                {
                    q = g.NodeIn(ContribDomain, "RotaryEmbedding", [q, positionIds, cosHalf, sinHalf], 1, P("q_rope"), null, Attr("interleaved", 1L))[0];
                    k = g.NodeIn(ContribDomain, "RotaryEmbedding", [k, positionIds, cosHalf, sinHalf], 1, P("k_rope"), null, Attr("interleaved", 1L))[0];
                }
                // No new_key_values outputs: the kernel writes this call's keys and values into the
                // staged past (present), and the runner reads them from there.
            }
            else
            {
                var qHeads = g.Node("Reshape", [q, g.ConstInt64(0, 0, c.Heads, hd)], P("q_rope.heads"));
                var kHeads = g.Node("Reshape", [k, g.ConstInt64(0, 0, c.KvHeads, hd)], P("k_rope.heads"));
                if (c.QkNorm)
                {
                    // Qwen3: each head's query and key RMS-normalised over head_dim before RoPE.
                    qHeads = RmsNorm(g, qHeads, g.Weight(P("q_norm"), weights.Read(WeightRole.QNorm, l), hd), eps, P("q_norm"), false);
                    kHeads = RmsNorm(g, kHeads, g.Weight(P("k_norm"), weights.Read(WeightRole.KNorm, l), hd), eps, P("k_norm"), false);
                }
                qr = Rope(g, qHeads, cos, sin, rotation, P("q_rope"));
                var kr = Rope(g, kHeads, cos, sin, rotation, P("k_rope"));
                newKey = g.Node("Transpose", [kr], P("new_key"), $"new_key_values.{l}.key", perm0213);
                newValue = g.Node("Transpose", [g.Node("Reshape", [v, g.ConstInt64(0, 0, c.KvHeads, hd)], P("v_heads"))], P("new_value"), $"new_key_values.{l}.value", perm0213);
            }

            string merged;
            if (groupQuery)
            {
                // One node: the kernel attends each row over its own length and writes this call's
                // keys and values into the staged past in place (present bound to the past's memory).
                // Rotating inside it, the kernel takes each row's position as its past length
                // (seqlens_k + 1 − fed length), the position the runner feeds.
                string[] inputs = rotaryInside
                    ? [q, k, v, pastKeys[l], pastValues[l], seqlensK!, totalLength!, cosHalf, sinHalf]
                    : [q, k, v, pastKeys[l], pastValues[l], seqlensK!, totalLength!];
                AttributeProto[] attributes = rotaryInside
                    ? [Attr("num_heads", (long)c.Heads), Attr("kv_num_heads", (long)c.KvHeads), Attr("do_rotary", 1L), Attr("rotary_interleaved", 1L)]
                    : [Attr("num_heads", (long)c.Heads), Attr("kv_num_heads", (long)c.KvHeads)];
                var attended = g.NodeIn(ContribDomain, "GroupQueryAttention", inputs,
                    3, P("attention"), [P("attention"), $"{PresentPrefix}{l}.key", $"{PresentPrefix}{l}.value"], attributes)[0];
                g.Output($"{PresentPrefix}{l}.key", $"{PresentPrefix}{l}.key", pastType, "batch_size", c.KvHeads, "past_sequence_length", hd);
                g.Output($"{PresentPrefix}{l}.value", $"{PresentPrefix}{l}.value", pastType, "batch_size", c.KvHeads, "past_sequence_length", hd);
                merged = attended;
            }
            else
            {
                merged = blocks!.Attend(g, c, l, qr, newKey, newValue, pastKeys[l], pastValues[l], optimumOutputs);
            }
            var o = Projections(g, weights, merged, l, c.QDim, quantization, P("o"), P("wo"), [(WeightRole.Wo, null, c.Dim)], inputIsHalf: halfAttention, keepHalf: halfAttention)[0];
            var ffnNorm = NormWeight(P("ffn_norm"), weights.Read(WeightRole.FfnNorm, l));
            string xf;
            if (groupQuery)
                (xf, x) = SkipRmsNorm(g, x, o, ffnNorm, eps, P("ffn_norm"));
            else
            {
                x = g.Node("Add", [x, o], P("residual_attn"));
                xf = RmsNorm(g, x, ffnNorm, eps, P("ffn_norm"), groupQuery);
            }
            // Gate and up in one MatMul over [dim, 2·hidden].
            var gateUp = Projections(g, weights, xf, l, c.Dim, quantization, P("w13"), P("w13"),
                [(WeightRole.W1, null, c.HiddenDim), (WeightRole.W3, null, c.HiddenDim)], inputIsHalf: halfAttention, keepHalf: halfAttention);
            string h1 = gateUp[0], h3 = gateUp[1];
            // SiLU: x·sigmoid(x), which ONNX Runtime's QuickGelu with alpha 1 is in one node.
            var silu = groupQuery
                ? g.NodeIn(ContribDomain, "QuickGelu", [h1], 1, P("silu"), null, Attr("alpha", 1.0f))[0]
                : g.Node("Mul", [h1, g.Node("Sigmoid", [h1])], P("silu"));
            var h = g.Node("Mul", [silu, h3], P("swiglu"));
            var down = Projections(g, weights, h, l, c.HiddenDim, quantization, P("w2"), P("w2"), [(WeightRole.W2, null, c.Dim)], inputIsHalf: halfAttention, keepHalf: halfAttention)[0];
            if (groupQuery && l < c.Layers - 1) pendingResidual = down;
            else x = g.Node("Add", [x, down], P("residual_ffn"));
            // The final hidden state is float32 again, as the classifier's graph takes it.
            if (halfAttention && l == c.Layers - 1) x = g.Node("Cast", [x], "hidden_f32", null, Attr("to", (long)DataType.Float));

            if (optimumOutputs)
            {
                g.Node("Concat", [pastKeys[l], newKey], P("present_key"), $"present.{l}.key", Attr("axis", 2L));
                g.Node("Concat", [pastValues[l], newValue], P("present_value"), $"present.{l}.value", Attr("axis", 2L));
                g.Output($"present.{l}.key", $"present.{l}.key", DataType.Float, "batch_size", c.KvHeads, "total_sequence_length", hd);
                g.Output($"present.{l}.value", $"present.{l}.value", DataType.Float, "batch_size", c.KvHeads, "total_sequence_length", hd);
            }
            if (!groupQuery)
            {
                g.Output(newKey, $"new_key_values.{l}.key", DataType.Float, "batch_size", c.KvHeads, "sequence_length", hd);
                g.Output(newValue, $"new_key_values.{l}.value", DataType.Float, "batch_size", c.KvHeads, "sequence_length", hd);
            }
        }

        // The runner samples from each row's last fed position only: one product with the one-hot
        // input picks it (1·x plus zeros is x, bit for bit), one node where finding the position in
        // the graph took five (every node is a dispatch, which a tiny model's step is made of).
        if (lastPosition is not null) x = g.Node("MatMul", [lastPosition, x], "last_hidden"); // [B, 1, S] · [B, S, dim] → [B, 1, dim]
        var final = RmsNorm(g, x, g.Weight("final_norm", weights.Read(WeightRole.FinalNorm, 0), c.Dim), eps, "final_norm", groupQuery);
        var logits = MatMul(g, final, weights.Read(WeightRole.Classifier, 0), c.VocabSize, c.Dim, quantization, "lm_head_out", "lm_head", "logits");
        if (optimumOutputs) g.Output(logits, "logits", DataType.Float, "batch_size", "sequence_length", c.VocabSize);
        else g.Output(logits, "logits", DataType.Float, "batch_size", 1, c.VocabSize);

        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "pipeline",
            ProducerVersion = ConverterVersion,
            Graph = g.Graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OpsetVersion });
        if (quantization != WeightQuantization.None || groupQuery)
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = ContribDomain, Version = 1 });
        AddMetadata(model, AttentionMetadataKey, (groupQuery ? AttentionKernel.GroupQuery : AttentionKernel.Blocks).ToString());
        AddMetadata(model, AttentionBlockMetadataKey, AttentionBlock.ToString());
        AddMetadata(model, "pipeline.config", System.Text.Json.JsonSerializer.Serialize(c));
        AddMetadata(model, QuantizationMetadataKey, quantization.ToString());
        return model;
    }

    /// <summary>Writes the decoder graph; see <see cref="Export"/> for <paramref name="optimumOutputs"/>.</summary>
    public static void Write(LlamaWeights weights, string path, bool optimumOutputs = true)
    {
        var model = Export(weights, optimumOutputs);
        using var file = File.Create(path);
        model.WriteTo(file);
    }

    /// <summary>
    /// Writes the decoder graph to <paramref name="path"/>, reading one tensor at a time. When the
    /// weights exceed <paramref name="externalDataThresholdBytes"/> they are streamed into
    /// <paramref name="externalDataPath"/> (default: beside the graph, its name + ".data"), which the
    /// graph names by <paramref name="externalDataLocation"/> (default: that file's name), so the
    /// graph may be written under a temporary name and renamed. Returns the data file, or null.
    /// </summary>
    internal static string? Write(IWeightSource weights, string path, bool optimumOutputs, long externalDataThresholdBytes = ExternalDataThresholdBytes,
        string? externalDataPath = null, string? externalDataLocation = null, WeightQuantization quantization = WeightQuantization.None,
        AttentionKernel attention = AttentionKernel.Blocks)
    {
        ArgumentNullException.ThrowIfNull(weights);
        string? dataPath = null;
        OnnxExternalData? external = null;
        try
        {
            if (WeightBytes(weights.Config) > externalDataThresholdBytes)
            {
                dataPath = externalDataPath ?? path + ".data";
                external = new OnnxExternalData(dataPath, externalDataLocation ?? Path.GetFileName(dataPath));
            }
            var model = Export(weights, optimumOutputs, external, quantization, attention);
            external?.Dispose();
            using var file = File.Create(path);
            model.WriteTo(file);
            return dataPath;
        }
        finally
        {
            external?.Dispose();
        }
    }

    /// <summary>
    /// Writes the exported (Optimum-layout) graph of any model path <see cref="ModelSource.Detect"/>
    /// recognises to <paramref name="path"/>, with external data beside it when the weights pass
    /// the protobuf limit (for <c>pipeline convert</c>). Returns the external-data file, or null.
    /// </summary>
    internal static string? Write(ModelSource source, string path, int? maxContext = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        using var weights = source.OpenWeights(maxContext);
        return Write(weights, path, optimumOutputs: true);
    }

    /// <summary>Float32 bytes of every weight the graph will hold (the classifier counted twice when shared: the graph stores it transposed).</summary>
    internal static long WeightBytes(LlamaConfig c) =>
        sizeof(float) * (c.ParameterCount + (c.SharedClassifier ? (long)c.VocabSize * c.Dim : 0) + 2L * c.SeqLen * c.HeadDim);

    /// <summary>Whether a graph exported with these settings computes attention with GroupQueryAttention.</summary>
    internal static bool UsesGroupQuery(LlamaConfig c, bool optimumOutputs, AttentionKernel attention) =>
        attention == AttentionKernel.GroupQuery && !optimumOutputs && c.HeadDim % 8 == 0;

    private static void AddMetadata(ModelProto model, string key, string value)
        => model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });

    /// <summary>run.c's rmsnorm over the last axis: weight * (x / sqrt(mean(x²) + eps)).</summary>
    /// <summary>
    /// RMS norm over the last axis as run.c computes it: x · (1 / sqrt(mean(x²) + eps)) · weight,
    /// five operators. <paramref name="fused"/> (the CPU runner's graph): ONNX Runtime's
    /// SimplifiedLayerNormalization, one node that computes each row alone.
    /// </summary>
    private static string RmsNorm(OnnxGraphBuilder g, string x, string weight, float eps, string name, bool fused)
    {
        if (fused)
            return g.Node("SimplifiedLayerNormalization", [x, weight], name, null, Attr("axis", -1L), Attr("epsilon", eps), Attr("stash_type", 1L));
        var meanSquare = g.Node("ReduceMean", [g.Node("Mul", [x, x])], $"{name}.mean_square", null, Ints("axes", -1L), Attr("keepdims", 1L));
        var inverse = g.Node("Reciprocal", [g.Node("Sqrt", [g.Node("Add", [meanSquare, g.ScalarFloat(eps)])])], $"{name}.inv_rms");
        return g.Node("Mul", [g.Node("Mul", [x, inverse]), weight], name);
    }

    /// <summary>
    /// RMS norm of x + skip in one node (ONNX Runtime's SkipSimplifiedLayerNormalization): returns the
    /// normed sum and the sum itself, the residual stream's next value.
    /// </summary>
    private static (string Normed, string Sum) SkipRmsNorm(OnnxGraphBuilder g, string x, string skip, string weight, float eps, string name)
    {
        var outputs = g.NodeIn(ContribDomain, "SkipSimplifiedLayerNormalization", [x, skip, weight], 4, name,
            [name, "", "", $"{name}.sum"], Attr("epsilon", eps)); // no mean or inverse deviation: unused
        return (outputs[0], outputs[3]);
    }

    /// <summary>
    /// x·Wᵀ (+ bias) for several [rows_i, cols] weights of layer <paramref name="layer"/> that read the
    /// same x, as one product over their rows stacked ([B, S, cols] → [B, S, Σ rows_i]), split back
    /// into one [B, S, rows_i] output per part. Every output element is still one dot product over
    /// cols, so a row's result does not depend on the batch (P6) whatever the stacking.
    /// </summary>
    private static string[] Projections(OnnxGraphBuilder g, IWeightSource weights, string x, int layer, int cols, WeightQuantization quantization,
        string name, string weightName, params (WeightRole Role, WeightRole? Bias, int Rows)[] parts) =>
        Projections(g, weights, x, layer, cols, quantization, name, weightName, parts, inputIsHalf: false);

    /// <summary>
    /// As the other overload. Float16 weights only: <paramref name="inputIsHalf"/>, x is already float16;
    /// <paramref name="keepHalf"/>, the outputs stay float16 (no bias allowed). Without <paramref name="split"/>,
    /// the stacked product comes back whole, one output.
    /// </summary>
    private static string[] Projections(OnnxGraphBuilder g, IWeightSource weights, string x, int layer, int cols, WeightQuantization quantization,
        string name, string weightName, (WeightRole Role, WeightRole? Bias, int Rows)[] parts, bool inputIsHalf, bool keepHalf = false, bool split = true)
    {
        if (keepHalf && parts.Any(p => p.Bias is not null)) throw new ArgumentException("a float16 product keeps no bias", nameof(keepHalf));
        int total = parts.Sum(p => p.Rows);
        float[] stacked;
        if (parts.Length == 1) stacked = weights.Read(parts[0].Role, layer);
        else
        {
            stacked = new float[(long)total * cols];
            long at = 0;
            foreach (var p in parts)
            {
                var w = weights.Read(p.Role, layer);
                if (w.LongLength != (long)p.Rows * cols)
                    throw new InvalidDataException($"layer {layer} {p.Role}: {w.LongLength} floats, expected [{p.Rows}, {cols}]");
                Array.Copy(w, 0, stacked, at, w.LongLength);
                at += w.LongLength;
            }
        }
        bool biased = parts.Any(p => p.Bias is not null);
        var product = MatMul(g, x, stacked, total, cols, quantization, biased ? $"{name}.matmul" : name, weightName, inputIsHalf: inputIsHalf, keepHalf: keepHalf);
        if (biased)
        {
            var bias = new float[total];
            int at = 0;
            foreach (var p in parts)
            {
                if (p.Bias is { } b) weights.Read(b, layer).AsSpan(0, p.Rows).CopyTo(bias.AsSpan(at));
                at += p.Rows;
            }
            product = g.Node("Add", [product, g.Weight($"{weightName}_bias", bias, total)], name);
        }
        if (parts.Length == 1 || !split) return [product];
        var sizes = g.ConstInt64(parts.Select(p => (long)p.Rows).ToArray());
        return g.NodeMulti("Split", [product, sizes], parts.Length, $"{name}.split", null, Attr("axis", -1L));
    }

    /// <summary>
    /// x·Wᵀ for the [rows, cols] weight <paramref name="matrix"/>: [B, S, cols] → [B, S, rows]. Float32
    /// weights go transposed into a MatMul; quantized ones, as they are (N = rows, K = cols), into
    /// com.microsoft MatMulNBits with blocks of 32 along K.
    /// </summary>
    private static string MatMul(OnnxGraphBuilder g, string x, float[] matrix, int rows, int cols, WeightQuantization quantization, string name, string weightName,
        string? outputName = null, bool inputIsHalf = false, bool keepHalf = false)
    {
        if ((inputIsHalf || keepHalf) && quantization != WeightQuantization.F16) throw new ArgumentException("a float16 input or output needs float16 weights", nameof(inputIsHalf));
        if (quantization == WeightQuantization.None)
            return g.Node("MatMul", [x, g.Weight(weightName, Transposed(matrix, rows, cols), cols, rows)], name, outputName);
        if (quantization == WeightQuantization.F16)
        {
            var half = inputIsHalf ? x : g.Node("Cast", [x], $"{name}.to_f16", null, Attr("to", (long)DataType.Float16));
            if (keepHalf) return g.Node("MatMul", [half, g.WeightHalf($"{weightName}_f16", Transposed(matrix, rows, cols), cols, rows)], name, outputName);
            var product = g.Node("MatMul", [half, g.WeightHalf($"{weightName}_f16", Transposed(matrix, rows, cols), cols, rows)], $"{name}.f16");
            return g.Node("Cast", [product], name, outputName, Attr("to", (long)DataType.Float));
        }
        int bits = quantization == WeightQuantization.Q8 ? 8 : 4;
        var (packed, scales) = BlockQuantizer.Quantize(matrix, rows, cols, bits);
        int blocks = BlockQuantizer.Blocks(cols);
        var b = g.Weight($"{weightName}_q{bits}", packed, rows, blocks, BlockQuantizer.BlobBytes);
        var s = g.Weight($"{weightName}_scales", scales, (long)rows * blocks);
        return g.NodeIn(ContribDomain, "MatMulNBits", [x, b, s], 1, name, outputName is null ? null : [outputName],
            Attr("K", (long)cols), Attr("N", (long)rows), Attr("bits", (long)BlockQuantizer.StorageBits), Attr("block_size", (long)BlockQuantizer.BlockSize),
            Attr("accuracy_level", QuantizedAccuracyLevel))[0];
    }

    /// <summary>Rotates interleaved pairs (x[2p], x[2p+1]) of each head of [B, S, heads, hd], as run.c does.</summary>
    private static string Rope(OnnxGraphBuilder g, string perHead, string cos, string sin, string rotation, string name)
    {
        var rotated = g.Node("MatMul", [perHead, rotation], $"{name}.rotated");
        return g.Node("Add", [g.Node("Mul", [perHead, cos]), g.Node("Mul", [rotated, sin])], name);
    }

    /// <summary>
    /// RoPE inverse frequencies [head_dim / 2]: theta^(-2p/hd) as run.c computes it in float, then
    /// the configured scaling, then any per-frequency divisors the file ships (GGUF rope_freqs).
    /// </summary>
    internal static float[] RopeInverseFrequencies(IWeightSource weights)
    {
        var c = weights.Config;
        int hd = c.HeadDim;
        var result = new float[hd / 2];
        for (int p = 0; p < result.Length; p++) result[p] = 1.0f / MathF.Pow(c.RopeTheta, (2 * p) / (float)hd);
        c.RopeScaling?.Apply(result);
        if (weights.Has(WeightRole.RopeFrequencyFactors))
        {
            var factors = weights.Read(WeightRole.RopeFrequencyFactors, 0);
            if (factors.Length != result.Length)
                throw new InvalidDataException($"rope frequency factors: {factors.Length} values for head_dim {hd} (expected {result.Length})");
            for (int p = 0; p < result.Length; p++) result[p] /= factors[p];
        }
        return result;
    }

    /// <summary>(n rounded up to a multiple of <paramref name="block"/>, the padding that takes).</summary>
    private static (string Padded, string PadBy) RoundUp(OnnxGraphBuilder g, string n, int block, string name)
    {
        var blocks = g.Node("Div", [g.Node("Add", [n, g.ConstInt64(block - 1)]), g.ConstInt64(block)]);
        var padded = g.Node("Mul", [blocks, g.ConstInt64(block)], $"{name}_padded");
        return (padded, g.Node("Sub", [padded, n], $"{name}_pad"));
    }

    /// <summary>[B, kv_heads, past, hd] as [B, kv_heads, blocks, block, hd]: a view when the past is whole blocks, else padded.</summary>
    private static string PastBlocks(OnnxGraphBuilder g, string aligned, string past, string pads, string blockShape, string name)
    {
        var asIs = g.Branch($"{name}.aligned");
        asIs.BranchOutput(asIs.Node("Reshape", [past, blockShape], "view"), DataType.Float);
        var padded = g.Branch($"{name}.padded");
        padded.BranchOutput(padded.Node("Reshape", [padded.Node("Pad", [past, pads]), blockShape], "padded"), DataType.Float);
        return g.Node("If", [aligned], name, null, Attr("then_branch", asIs.Graph), Attr("else_branch", padded.Graph));
    }

    /// <summary>Sums per-block partials over the block axis (2) in order, keeping the last running sum.</summary>
    private static string LastOfCumSum(OnnxGraphBuilder g, string perBlock, string name)
    {
        var running = g.Node("CumSum", [perBlock, g.ScalarInt64(2)], $"{name}.cumsum");
        return g.Node("Slice", [running, g.ConstInt64(-1), g.ConstInt64(long.MaxValue), g.ConstInt64(2)], name);
    }

    /// <summary>A [rows, cols] matrix transposed to [cols, rows] for x·Wᵀ.</summary>
    private static float[] Transposed(float[] matrix, int rows, int cols)
    {
        if (matrix.LongLength != (long)rows * cols)
            throw new InvalidDataException($"weight has {matrix.LongLength} floats, expected [{rows}, {cols}]");
        var result = new float[matrix.LongLength];
        for (long r = 0; r < rows; r++)
            for (long col = 0; col < cols; col++)
                result[col * rows + r] = matrix[r * cols + col];
        return result;
    }
}
