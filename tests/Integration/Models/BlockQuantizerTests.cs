using Pipeline.Inference.Models.Gguf;
using Pipeline.Inference.Models.Sources;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration.Models;

/// <summary>
/// Weight-only quantization (<c>--quantize q8|q4</c>): the grid is ggml's, so a GGUF Q8_0 or Q4_0
/// tensor, which the loader dequantizes to float, comes back to exactly its own values and scales;
/// and a quantized model still predicts what the float model predicts.
/// </summary>
public sealed class BlockQuantizerTests
{
    [Fact]
    public void Q8_0_blocks_dequantized_by_the_gguf_loader_requantize_to_the_same_values_and_scales()
    {
        var random = new Random(7);
        const int Blocks = 64;
        var ggml = new byte[Blocks * 34];
        var q = new int[Blocks * 32];
        var d = new float[Blocks];
        for (int b = 0; b < Blocks; b++)
        {
            var half = (Half)(float)(random.NextDouble() * 0.01 + 1e-4);
            d[b] = (float)half;
            BitConverter.GetBytes(BitConverter.HalfToUInt16Bits(half)).CopyTo(ggml, b * 34);
            for (int i = 0; i < 32; i++)
            {
                // llama-quantize maps each block's largest magnitude to ±127.
                q[b * 32 + i] = i == b % 32 ? (b % 2 == 0 ? 127 : -127) : random.Next(-127, 128);
                ggml[b * 34 + 2 + i] = unchecked((byte)(sbyte)q[b * 32 + i]);
            }
        }
        var floats = new float[Blocks * 32];
        GgmlDequantizer.Dequantize(GgmlType.Q8_0, ggml, floats);

        var (packed, scales) = BlockQuantizer.Quantize(floats, Blocks, 32, bits: 8);

        Assert.Equal(d, scales);
        Assert.Equal(q.Select(v => (byte)(v + 128)), packed);
    }

    [Fact]
    public void Q4_0_blocks_dequantized_by_the_gguf_loader_requantize_to_the_same_values_and_scales()
    {
        var random = new Random(11);
        const int Blocks = 64;
        var ggml = new byte[Blocks * 18];
        var n = new int[Blocks * 32];
        var d = new float[Blocks];
        for (int b = 0; b < Blocks; b++)
        {
            var half = (Half)(float)((random.NextDouble() - 0.5) * 0.02);
            d[b] = (float)half;
            BitConverter.GetBytes(BitConverter.HalfToUInt16Bits(half)).CopyTo(ggml, b * 18);
            // llama-quantize gives each block's signed extreme nibble 0 (−8·d); the rest lie in 1..15.
            for (int i = 0; i < 32; i++) n[b * 32 + i] = i == (b * 5) % 32 ? 0 : random.Next(1, 16);
            for (int j = 0; j < 16; j++) ggml[b * 18 + 2 + j] = (byte)(n[b * 32 + j] | (n[b * 32 + j + 16] << 4));
        }
        var floats = new float[Blocks * 32];
        GgmlDequantizer.Dequantize(GgmlType.Q4_0, ggml, floats);

        var (packed, scales) = BlockQuantizer.Quantize(floats, Blocks, 32, bits: 4);

        Assert.Equal(d, scales);
        Assert.Equal(n.Select(v => (byte)(v - 8 + 128)), packed);
    }

    [Theory]
    [InlineData(8)]
    [InlineData(4)]
    public void Quantized_weights_lie_within_a_step_of_the_originals_and_padding_is_zero(int bits)
    {
        var random = new Random(bits);
        const int Rows = 5, Cols = 70; // 70: three blocks, the last one padded
        var w = Enumerable.Range(0, Rows * Cols).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();

        var (packed, scales) = BlockQuantizer.Quantize(w, Rows, Cols, bits);

        int blocks = BlockQuantizer.Blocks(Cols);
        Assert.Equal(3, blocks);
        Assert.Equal(Rows * blocks * 32, packed.Length);
        for (int r = 0; r < Rows; r++)
            for (int k = 0; k < blocks * 32; k++)
            {
                float scale = scales[r * blocks + k / 32];
                float restored = (packed[(r * blocks + k / 32) * 32 + k % 32] - 128) * scale;
                if (k >= Cols) Assert.Equal(0f, restored);
                // Half a step by rounding; Q4_0's grid is −8..7 steps, so a value of the other sign
                // than the block's extreme may be clamped a whole step short (as in ggml).
                else Assert.InRange(Math.Abs(restored - w[r * Cols + k]), 0f, Math.Abs(scale) * (bits == 8 ? 0.5001f : 1.0001f));
            }
    }

    [Fact]
    public void Quantizing_a_malformed_weight_names_its_expected_shape()
    {
        var e = Assert.Throws<InvalidDataException>(() => BlockQuantizer.Quantize(new float[10], 3, 4, 8));
        Assert.Contains("[3, 4]", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(WeightQuantization.Q8, 0.95)]
    [InlineData(WeightQuantization.Q4, 0.75)]
    public void A_quantized_stories260K_predicts_the_float_models_next_token_on_most_positions(WeightQuantization quantization, double agreement)
    {
        var dir = Directory.CreateTempSubdirectory("pipeline-quant-").FullName;
        try
        {
            var source = ModelSource.Detect(Path.Combine(RepoPaths.ModelDir, "stories260K.bin"));
            using var full = DecoderModel.Load(OnnxModelCache.GetOrConvert(source, null, dir), new RunnerOptions { IntraOpThreads = 1 });
            using var quantized = DecoderModel.Load(OnnxModelCache.GetOrConvert(source, null, quantization, dir), new RunnerOptions { IntraOpThreads = 1 });
            Assert.NotEqual(OnnxModelCache.GetOrConvert(source, null, dir), OnnxModelCache.GetOrConvert(source, null, quantization, dir));

            // Teacher-forced on the float model's greedy continuation, so one early miss does not derail the rest.
            using var fullCache = new KvCache(full.Config);
            using var quantCache = new KvCache(quantized.Config);
            int vocab = full.Config.VocabSize, token = 1, same = 0, steps = 100;
            var a = new float[vocab];
            var b = new float[vocab];
            for (int i = 0; i < steps; i++)
            {
                var fed = new[] { token };
                full.Step([new SequenceStep(fullCache, fed)], new StepWorkspace(), a);
                quantized.Step([new SequenceStep(quantCache, fed)], new StepWorkspace(), b);
                token = ArgMax(a);
                if (ArgMax(b) == token) same++;
            }
            Assert.InRange(same / (double)steps, agreement, 1.0);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static int ArgMax(float[] x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
