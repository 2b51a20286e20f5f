using Google.Protobuf;
using Pipeline.Inference.Models;
using Pipeline.Inference.Onnx.Schema;
using static Pipeline.Inference.Onnx.OnnxGraphBuilder;
using DataType = Pipeline.Inference.Onnx.Schema.TensorProto.Types.DataType;

namespace Pipeline.Inference.Onnx;

/// <summary>
/// Turns Llama weights into an ONNX decoder graph with a KV cache, in the Hugging Face Optimum
/// decoder layout: inputs <c>input_ids</c>, <c>attention_mask</c>, <c>position_ids</c>,
/// <c>past_key_values.{i}.key/.value</c>; outputs <c>logits</c> and <c>present.{i}.key/.value</c>.
/// </summary>
/// <remarks>
/// Attention is computed in fixed-size key blocks (<see cref="AttentionBlock"/> keys each): every
/// GEMM inside attention has the same shape whatever the batch or the padded key length, and the
/// per-block partial sums are combined by a sequential CumSum. A sequence's reductions therefore
/// see the same numbers in the same order alone or in a ragged batch, so its logits are
/// bit-identical either way, provided the caller starts the new keys on a block boundary (the
/// past length is a multiple of the block). Padding keys (mask 0) contribute exact zeros.
/// </remarks>
public static class LlamaOnnxExporter
{
    /// <summary>Bump when the graph changes in a way the assembly identity would not show.</summary>
    public const string ConverterVersion = "llama2c-onnx-5";
    public const int AttentionBlock = 64;
    public const long IrVersion = 8;     // ONNX 1.10+: accepted by ONNX Runtime 1.31
    public const long OpsetVersion = 17; // standard ai.onnx operators only

    public const string AttentionBlockMetadataKey = "pipeline.attention_block";

    internal static ModelProto Export(LlamaWeights weights)
    {
        var c = weights.Config;
        c.Validate();
        var g = new OnnxGraphBuilder("llama_decoder");
        int hd = c.HeadDim, half = hd / 2, kb = AttentionBlock;

        var inputIds = g.Input("input_ids", DataType.Int64, "batch_size", "sequence_length");
        var attentionMask = g.Input("attention_mask", DataType.Int64, "batch_size", "total_sequence_length");
        var positionIds = g.Input("position_ids", DataType.Int64, "batch_size", "sequence_length");
        var pastKeys = new string[c.Layers];
        var pastValues = new string[c.Layers];
        for (int l = 0; l < c.Layers; l++)
        {
            pastKeys[l] = g.Input($"past_key_values.{l}.key", DataType.Float, "batch_size", c.KvHeads, "past_sequence_length", hd);
            pastValues[l] = g.Input($"past_key_values.{l}.value", DataType.Float, "batch_size", c.KvHeads, "past_sequence_length", hd);
        }

        // Dynamic sizes, each as a 1-element int64 vector.
        var idsShape = g.Node("Shape", [inputIds], "ids_shape");
        var seq1 = g.Node("Slice", [idsShape, g.ConstInt64(1), g.ConstInt64(2)], "seq_len");
        var past1 = g.Node("Slice", [g.Node("Shape", [pastKeys[0]], "past_shape"), g.ConstInt64(2), g.ConstInt64(3)], "past_len");
        var total1 = g.Node("Add", [past1, seq1], "total_len");
        var blocks1 = g.Node("Div", [g.Node("Add", [total1, g.ConstInt64(kb - 1)]), g.ConstInt64(kb)], "key_blocks");
        var padded1 = g.Node("Mul", [blocks1, g.ConstInt64(kb)], "padded_len");
        var padBy1 = g.Node("Sub", [padded1, total1], "key_pad");

        // Mask [B, 1, blocks, 1, S, kb]: key j is visible to query i when the attention mask
        // allows it and j <= past + i (causal over the new tokens).
        var maskPads = g.Node("Concat", [g.ConstInt64(0, 0, 0), padBy1], "mask_pads", null, Attr("axis", 0L));
        var keyValid = g.Node("Cast", [g.Node("Pad", [attentionMask, maskPads], "mask_padded")], "key_valid", null, Attr("to", (long)DataType.Bool));
        var paddedScalar = g.Node("Squeeze", [padded1, g.ConstInt64(0)], "padded_scalar");
        var seqScalar = g.Node("Squeeze", [seq1, g.ConstInt64(0)], "seq_scalar");
        var pastScalar = g.Node("Squeeze", [past1, g.ConstInt64(0)], "past_scalar");
        var keyIndex = g.Node("Range", [g.ScalarInt64(0), paddedScalar, g.ScalarInt64(1)], "key_index");
        var queryLimit = g.Node("Add", [g.Node("Range", [g.ScalarInt64(0), seqScalar, g.ScalarInt64(1)], "query_index"), pastScalar], "query_limit");
        var causal = g.Node("LessOrEqual", [keyIndex, g.Node("Unsqueeze", [queryLimit, g.ConstInt64(1)])], "causal");
        var visible = g.Node("And", [g.Node("Unsqueeze", [keyValid, g.ConstInt64(1)]), causal], "visible");
        var visibleBlocks = g.Node("Reshape", [visible, g.ConstInt64(0, 0, -1, kb)], "visible_blocks");
        var mask = g.Node("Unsqueeze", [g.Node("Transpose", [visibleBlocks], null, null, Ints("perm", 0L, 2, 1, 3)), g.ConstInt64(1, 3)], "attention_visible");
        var kvPads = g.Node("Concat", [g.ConstInt64(0, 0, 0, 0, 0, 0), padBy1, g.ConstInt64(0)], "kv_pads", null, Attr("axis", 0L));

        // Rotary tables [seq_len, head_dim/2], computed as run.c does in float.
        var cosTable = new float[c.SeqLen * half];
        var sinTable = new float[c.SeqLen * half];
        for (int pos = 0; pos < c.SeqLen; pos++)
            for (int p = 0; p < half; p++)
            {
                float freq = 1.0f / MathF.Pow(LlamaConfig.RopeTheta, (2 * p) / (float)hd);
                float val = pos * freq;
                cosTable[pos * half + p] = MathF.Cos(val);
                sinTable[pos * half + p] = MathF.Sin(val);
            }
        var cos = g.Node("Unsqueeze", [g.Node("Gather", [g.Weight("rope_cos", cosTable, c.SeqLen, half), positionIds]), g.ConstInt64(2, 4)], "cos");
        var sin = g.Node("Unsqueeze", [g.Node("Gather", [g.Weight("rope_sin", sinTable, c.SeqLen, half), positionIds]), g.ConstInt64(2, 4)], "sin");

        var x = g.Node("Gather", [g.Weight("embed_tokens", weights.TokenEmbedding, c.VocabSize, c.Dim), inputIds], "embedding");
        var scale = g.ScalarFloat(MathF.Sqrt(hd));
        var negInf = g.ScalarFloat(float.NegativeInfinity);
        var ones = g.ConstFloat(Enumerable.Repeat(1f, kb).ToArray(), kb, 1);

        for (int l = 0; l < c.Layers; l++)
        {
            string P(string n) => $"layers.{l}.{n}";
            var xn = RmsNorm(g, x, g.Weight(P("attn_norm"), Slice(weights.RmsAttention, l, c.Dim), c.Dim), P("attn_norm"));
            var q = g.Node("MatMul", [xn, g.Weight(P("wq"), Transposed(weights.Wq, l, c.Dim, c.Dim), c.Dim, c.Dim)], P("q"));
            var k = g.Node("MatMul", [xn, g.Weight(P("wk"), Transposed(weights.Wk, l, c.KvDim, c.Dim), c.Dim, c.KvDim)], P("k"));
            var v = g.Node("MatMul", [xn, g.Weight(P("wv"), Transposed(weights.Wv, l, c.KvDim, c.Dim), c.Dim, c.KvDim)], P("v"));
            var qr = Rope(g, q, c.Heads, half, hd, cos, sin, P("q_rope"));
            var kr = Rope(g, k, c.KvHeads, half, hd, cos, sin, P("k_rope"));
            var vh = g.Node("Reshape", [v, g.ConstInt64(0, 0, c.KvHeads, hd)], P("v_heads"));

            var perm0213 = Ints("perm", 0L, 2, 1, 3);
            var presentKey = g.Node("Concat", [pastKeys[l], g.Node("Transpose", [kr], null, null, perm0213)], P("present_key"), $"present.{l}.key", Attr("axis", 2L));
            var presentValue = g.Node("Concat", [pastValues[l], g.Node("Transpose", [vh], null, null, perm0213)], P("present_value"), $"present.{l}.value", Attr("axis", 2L));
            var keyBlocks = g.Node("Reshape", [g.Node("Pad", [presentKey, kvPads]), g.ConstInt64(0, 0, -1, kb, hd)], P("key_blocks"));
            var valueBlocks = g.Node("Reshape", [g.Node("Pad", [presentValue, kvPads]), g.ConstInt64(0, 0, -1, kb, hd)], P("value_blocks"));
            var keyBlocksT = g.Node("Transpose", [keyBlocks], null, null, Ints("perm", 0L, 1, 2, 4, 3));

            // Queries grouped by the KV head they read: [B, kv_heads, 1, group*S, hd].
            var qh = g.Node("Transpose", [qr], null, null, perm0213);
            var qg = g.Node("Unsqueeze", [g.Node("Reshape", [qh, g.ConstInt64(0, c.KvHeads, -1, hd)]), g.ConstInt64(2)], P("q_grouped"));
            var scores = g.Node("Div", [g.Node("MatMul", [qg, keyBlocksT]), scale], P("scores"));
            var scores6 = g.Node("Reshape", [scores, g.ConstInt64(0, 0, 0, c.QueriesPerKvHead, -1, kb)]);
            var masked = g.Node("Where", [mask, scores6, negInf], P("masked_scores"));
            var max = g.Node("ReduceMax", [masked], P("score_max"), null, Ints("axes", 2L, 5), Attr("keepdims", 1L));
            var exp = g.Node("Reshape", [g.Node("Exp", [g.Node("Sub", [masked, max])]), g.ConstInt64(0, 0, 0, -1, kb)], P("exp_scores"));
            var numerator = LastOfCumSum(g, g.Node("MatMul", [exp, valueBlocks]), P("numerator"));
            var denominator = LastOfCumSum(g, g.Node("MatMul", [exp, ones]), P("denominator"));
            var attention = g.Node("Div", [numerator, denominator], P("attention"));
            var merged = g.Node("Reshape", [g.Node("Transpose", [g.Node("Reshape", [attention, g.ConstInt64(0, c.Heads, -1, hd)])], null, null, perm0213), g.ConstInt64(0, 0, c.Dim)], P("attention_merged"));
            var o = g.Node("MatMul", [merged, g.Weight(P("wo"), Transposed(weights.Wo, l, c.Dim, c.Dim), c.Dim, c.Dim)], P("o"));
            x = g.Node("Add", [x, o], P("residual_attn"));

            var xf = RmsNorm(g, x, g.Weight(P("ffn_norm"), Slice(weights.RmsFfn, l, c.Dim), c.Dim), P("ffn_norm"));
            var h1 = g.Node("MatMul", [xf, g.Weight(P("w1"), Transposed(weights.W1, l, c.HiddenDim, c.Dim), c.Dim, c.HiddenDim)], P("w1"));
            var h3 = g.Node("MatMul", [xf, g.Weight(P("w3"), Transposed(weights.W3, l, c.HiddenDim, c.Dim), c.Dim, c.HiddenDim)], P("w3"));
            var silu = g.Node("Mul", [h1, g.Node("Sigmoid", [h1])], P("silu"));
            var h = g.Node("Mul", [silu, h3], P("swiglu"));
            var down = g.Node("MatMul", [h, g.Weight(P("w2"), Transposed(weights.W2, l, c.Dim, c.HiddenDim), c.HiddenDim, c.Dim)], P("w2"));
            x = g.Node("Add", [x, down], P("residual_ffn"));

            g.Output(presentKey, $"present.{l}.key", DataType.Float, "batch_size", c.KvHeads, "total_sequence_length", hd);
            g.Output(presentValue, $"present.{l}.value", DataType.Float, "batch_size", c.KvHeads, "total_sequence_length", hd);
        }

        var final = RmsNorm(g, x, g.Weight("final_norm", weights.RmsFinal, c.Dim), "final_norm");
        var classifier = g.Weight("lm_head", Transposed(weights.Classifier, 0, c.VocabSize, c.Dim), c.Dim, c.VocabSize);
        var logits = g.Node("MatMul", [final, classifier], "lm_head_out", "logits");
        g.Output(logits, "logits", DataType.Float, "batch_size", "sequence_length", c.VocabSize);

        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "pipeline",
            ProducerVersion = ConverterVersion,
            Graph = g.Graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OpsetVersion });
        AddMetadata(model, AttentionBlockMetadataKey, AttentionBlock.ToString());
        AddMetadata(model, "pipeline.config", System.Text.Json.JsonSerializer.Serialize(c));
        return model;
    }

    public static void Write(LlamaWeights weights, string path)
    {
        var model = Export(weights);
        using var file = File.Create(path);
        model.WriteTo(file);
    }

    private static void AddMetadata(ModelProto model, string key, string value)
        => model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });

    /// <summary>run.c's rmsnorm: weight * (x / sqrt(mean(x²) + eps)).</summary>
    private static string RmsNorm(OnnxGraphBuilder g, string x, string weight, string name)
    {
        var meanSquare = g.Node("ReduceMean", [g.Node("Mul", [x, x])], $"{name}.mean_square", null, Ints("axes", -1L), Attr("keepdims", 1L));
        var inverse = g.Node("Reciprocal", [g.Node("Sqrt", [g.Node("Add", [meanSquare, g.ScalarFloat(LlamaConfig.RmsNormEpsilon)])])], $"{name}.inv_rms");
        return g.Node("Mul", [g.Node("Mul", [x, inverse]), weight], name);
    }

    /// <summary>Rotates interleaved pairs (x[2p], x[2p+1]) of each head, as run.c does; returns [B, S, heads, hd].</summary>
    private static string Rope(OnnxGraphBuilder g, string x, int heads, int half, int hd, string cos, string sin, string name)
    {
        var pairs = g.Node("Reshape", [x, g.ConstInt64(0, 0, heads, half, 2)], $"{name}.pairs");
        var parts = g.NodeMulti("Split", [pairs, g.ConstInt64(1, 1)], 2, $"{name}.split", null, Attr("axis", -1L));
        var real = g.Node("Sub", [g.Node("Mul", [parts[0], cos]), g.Node("Mul", [parts[1], sin])], $"{name}.re");
        var imag = g.Node("Add", [g.Node("Mul", [parts[0], sin]), g.Node("Mul", [parts[1], cos])], $"{name}.im");
        var joined = g.Node("Concat", [real, imag], $"{name}.joined", null, Attr("axis", -1L));
        return g.Node("Reshape", [joined, g.ConstInt64(0, 0, heads, hd)], name);
    }

    /// <summary>Sums per-block partials over the block axis (2) in order, keeping the last running sum.</summary>
    private static string LastOfCumSum(OnnxGraphBuilder g, string perBlock, string name)
    {
        var running = g.Node("CumSum", [perBlock, g.ScalarInt64(2)], $"{name}.cumsum");
        return g.Node("Slice", [running, g.ConstInt64(-1), g.ConstInt64(long.MaxValue), g.ConstInt64(2)], name);
    }

    private static float[] Slice(float[] stacked, int layer, int size) => stacked.AsSpan(layer * size, size).ToArray();

    /// <summary>Layer <paramref name="layer"/> of a stacked [rows, cols] matrix, transposed to [cols, rows] for x·Wᵀ.</summary>
    private static float[] Transposed(float[] stacked, int layer, int rows, int cols)
    {
        var result = new float[rows * cols];
        var src = stacked.AsSpan((long)layer * rows * cols > int.MaxValue ? throw new NotSupportedException("tensor too large") : layer * rows * cols, rows * cols);
        for (int r = 0; r < rows; r++)
            for (int col = 0; col < cols; col++)
                result[col * rows + r] = src[r * cols + col];
        return result;
    }
}
