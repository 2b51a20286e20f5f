using Pipeline.Inference.Models;
using Pipeline.Inference.Onnx.Schema;
using static Pipeline.Inference.Onnx.OnnxGraphBuilder;
using DataType = Pipeline.Inference.Onnx.Schema.TensorProto.Types.DataType;

namespace Pipeline.Inference.Onnx;

public static partial class LlamaOnnxExporter
{
    /// <summary>
    /// Attention over key blocks of <see cref="AttentionBlock"/> positions with standard operators
    /// (<see cref="AttentionKernel.Blocks"/>): the values every layer shares (the additive mask,
    /// the padded sizes) are built once by <see cref="Build"/>, then <see cref="Attend"/> per layer.
    /// </summary>
    private sealed record BlockPrelude(string PastAligned, string PastKvPads, string NewKvPads, string BlockShape,
        string MaskBias, string PastBlocks1, string Scale, string Ones)
    {
        public static BlockPrelude Build(OnnxGraphBuilder g, LlamaConfig c, string inputIds, string attentionMask, string pastKeys0)
        {
            int hd = c.HeadDim, kb = AttentionBlock;
        // Dynamic sizes, each as a 1-element int64 vector. Keys are laid out as the past, padded
        // to whole blocks, then the new tokens, padded to whole blocks.
        var seq1 = g.Node("Slice", [g.Node("Shape", [inputIds], "ids_shape"), g.ConstInt64(1), g.ConstInt64(2)], "seq_len");
        var past1 = g.Node("Slice", [g.Node("Shape", [pastKeys0], "past_shape"), g.ConstInt64(2), g.ConstInt64(3)], "past_len");
        var (pastPadded1, pastPadBy1) = RoundUp(g, past1, kb, "past");
        var (seqPadded1, seqPadBy1) = RoundUp(g, seq1, kb, "seq");
        var pastBlocks1 = g.Node("Div", [pastPadded1, g.ConstInt64(kb)], "past_blocks");
        var pastAligned = g.Node("Squeeze", [g.Node("Equal", [pastPadBy1, g.ConstInt64(0)]), g.ConstInt64(0)], "past_aligned");
        var pastKvPads = g.Node("Concat", [g.ConstInt64(0, 0, 0, 0, 0, 0), pastPadBy1, g.ConstInt64(0)], "past_kv_pads", null, Attr("axis", 0L));
        var newKvPads = g.Node("Concat", [g.ConstInt64(0, 0, 0, 0, 0, 0), seqPadBy1, g.ConstInt64(0)], "new_kv_pads", null, Attr("axis", 0L));
        var blockShape = g.ConstInt64(0, 0, -1, kb, hd);

        // Additive mask [B, 1, blocks, kb, 1, S]: 0 where key j is visible to query i, -inf elsewhere.
        // Visible: the attention mask allows the key, and it is in the past or at most i new tokens in.
        // Padded as floats: CUDA's Pad has no int64 kernel, and a node left on the CPU rules out CUDA graphs.
        var maskFloat = g.Node("Cast", [attentionMask], "mask_float", null, Attr("to", (long)DataType.Float));
        var maskPast = g.Node("Slice", [maskFloat, g.ConstInt64(0), past1, g.ConstInt64(1)], "mask_past");
        var maskNew = g.Node("Slice", [maskFloat, past1, g.ConstInt64(long.MaxValue), g.ConstInt64(1)], "mask_new");
        var keyValid = g.Node("Cast", [g.Node("Concat", [
                g.Node("Pad", [maskPast, g.Node("Concat", [g.ConstInt64(0, 0, 0), pastPadBy1], null, null, Attr("axis", 0L))]),
                g.Node("Pad", [maskNew, g.Node("Concat", [g.ConstInt64(0, 0, 0), seqPadBy1], null, null, Attr("axis", 0L))])],
            "mask_padded", null, Attr("axis", 1L))], "key_valid", null, Attr("to", (long)DataType.Bool));
        var keyCount = g.Node("Squeeze", [g.Node("Add", [pastPadded1, seqPadded1]), g.ConstInt64(0)], "key_count");
        var keyOffset = g.Node("Sub", [g.Node("Range", [g.ScalarInt64(0), keyCount, g.ScalarInt64(1)]), g.Node("Squeeze", [pastPadded1, g.ConstInt64(0)])], "key_new_index");
        var queryIndex = g.Node("Range", [g.ScalarInt64(0), g.Node("Squeeze", [seq1, g.ConstInt64(0)]), g.ScalarInt64(1)], "query_index");
        var causal = g.Node("LessOrEqual", [keyOffset, g.Node("Unsqueeze", [queryIndex, g.ConstInt64(1)])], "causal");
        var visible = g.Node("And", [g.Node("Unsqueeze", [keyValid, g.ConstInt64(1)]), causal], "visible"); // [B, S, keys]
        // [B, S, keys] → [B, kv_heads, group, S, keys], expanded once so that every layer adds it elementwise.
        var biasShape = g.Node("Concat", [g.Node("Slice", [g.Node("Shape", [inputIds]), g.ConstInt64(0), g.ConstInt64(1)]), g.ConstInt64(c.KvHeads, c.QueriesPerKvHead), seq1, g.Node("Add", [pastPadded1, seqPadded1])], "bias_shape", null, Attr("axis", 0L));
        var maskBias = g.Node("Expand", [g.Node("Where", [g.Node("Unsqueeze", [visible, g.ConstInt64(1, 2)]), g.ScalarFloat(0f), g.ScalarFloat(float.NegativeInfinity)]), biasShape], "attention_bias");
            return new BlockPrelude(pastAligned, pastKvPads, newKvPads, blockShape, maskBias, pastBlocks1,
                g.ScalarFloat(MathF.Sqrt(hd)), g.ConstFloat(Enumerable.Repeat(1f, kb).ToArray(), kb, 1));
        }

        /// <summary>One layer's attention, merged back to [B, S, q_dim].</summary>
        public string Attend(OnnxGraphBuilder g, LlamaConfig c, int l, string qr, string newKey, string newValue,
            string pastKey, string pastValue, bool optimumOutputs)
        {
            string P(string n) => $"layers.{l}.{n}";
            int hd = c.HeadDim, group = c.QueriesPerKvHead;
            string pastAligned = PastAligned, pastKvPads = PastKvPads, newKvPads = NewKvPads, blockShape = BlockShape,
                maskBias = MaskBias, pastBlocks1 = PastBlocks1, scale = Scale, ones = Ones;
            // The runner's past is whole blocks and is read in place; an exported model accepts any
            // past and pads one that is not whole blocks.
            var pastKeyBlocks = optimumOutputs ? PastBlocks(g, pastAligned, pastKey, pastKvPads, blockShape, P("past_key_blocks")) : g.Node("Reshape", [pastKey, blockShape], P("past_key_blocks"));
            var pastValueBlocks = optimumOutputs ? PastBlocks(g, pastAligned, pastValue, pastKvPads, blockShape, P("past_value_blocks")) : g.Node("Reshape", [pastValue, blockShape], P("past_value_blocks"));
            var newKeyBlocks = g.Node("Reshape", [g.Node("Pad", [newKey, newKvPads]), blockShape], P("new_key_blocks"));
            var newValueBlocks = g.Node("Reshape", [g.Node("Pad", [newValue, newKvPads]), blockShape], P("new_value_blocks"));

            // Queries grouped by the KV head they read, transposed: [B, kv_heads, 1, hd, group*S].
            var qGrouped = g.Node("Reshape", [qr, g.ConstInt64(0, 0, c.KvHeads, group, hd)]);
            var qT = g.Node("Unsqueeze", [g.Node("Reshape", [g.Node("Transpose", [qGrouped], null, null, Ints("perm", 0L, 2, 4, 3, 1)), g.ConstInt64(0, 0, hd, -1)]), g.ConstInt64(2)], P("q_t"));

            // Scores per block with keys as rows, [B, kv_heads, blocks, kb, group*S]; q is repeated per
            // block (a few floats each) since ONNX Runtime will not broadcast against zero past blocks.
            var qPast = g.Node("Expand", [qT, g.Node("Concat", [g.Node("Slice", [g.Node("Shape", [pastKeyBlocks]), g.ConstInt64(0), g.ConstInt64(3)]), g.ConstInt64(1, 1)], null, null, Attr("axis", 0L))], P("q_per_past_block"));
            var qNew = g.Node("Expand", [qT, g.Node("Concat", [g.Node("Slice", [g.Node("Shape", [newKeyBlocks]), g.ConstInt64(0), g.ConstInt64(3)]), g.ConstInt64(1, 1)], null, null, Attr("axis", 0L))], P("q_per_new_block"));
            var blockScores = g.Node("Concat", [g.Node("MatMul", [pastKeyBlocks, qPast]), g.Node("MatMul", [newKeyBlocks, qNew])], P("block_scores"), null, Attr("axis", 2L));
            // Rows per query with keys along the last axis, [B, kv_heads, group, S, keys], so the
            // mask, the max and the exponent are plain elementwise or last-axis operations.
            var queryBlocks = g.Node("Transpose", [blockScores], P("query_blocks"), null, Ints("perm", 0L, 1, 4, 2, 3)); // [B, kv, gS, blocks, kb]
            var masked = g.Node("Add", [g.Node("Div", [g.Node("Reshape", [queryBlocks, g.Node("Shape", [maskBias])]), scale]), maskBias], P("masked_scores"));
            var max = g.Node("ReduceMax", [masked], P("score_max"), null, Ints("axes", -1L), Attr("keepdims", 1L));
            var exp = g.Node("Exp", [g.Node("Sub", [masked, max])], P("exp_scores"));
            // Back to blocks with queries as rows: [B, kv_heads, blocks, group*S, kb].
            var expBlocks = g.Node("Transpose", [g.Node("Reshape", [exp, g.Node("Shape", [queryBlocks])])], P("exp_blocks"), null, Ints("perm", 0L, 1, 3, 2, 4));
            var denominator = LastOfCumSum(g, g.Node("MatMul", [expBlocks, ones]), P("denominator"));
            var expPast = g.Node("Slice", [expBlocks, g.ConstInt64(0), pastBlocks1, g.ConstInt64(2)], P("exp_past"));
            var expNew = g.Node("Slice", [expBlocks, pastBlocks1, g.ConstInt64(long.MaxValue), g.ConstInt64(2)], P("exp_new"));
            var perBlock = g.Node("Concat", [g.Node("MatMul", [expPast, pastValueBlocks]), g.Node("MatMul", [expNew, newValueBlocks])], null, null, Attr("axis", 2L));
            var numerator = LastOfCumSum(g, perBlock, P("numerator"));
            var attention = g.Node("Div", [numerator, denominator], P("attention")); // [B, kv_heads, 1, group*S, hd]
            return g.Node("Reshape", [g.Node("Transpose", [g.Node("Reshape", [attention, g.ConstInt64(0, 0, group, -1, hd)])], null, null, Ints("perm", 0L, 3, 1, 2, 4)), g.ConstInt64(0, 0, c.QDim)], P("attention_merged"));
        }
    }
}
