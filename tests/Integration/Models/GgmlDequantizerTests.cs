using Pipeline.Inference.Models.Gguf;

namespace Pipeline.Integration.Models;

/// <summary>
/// The ggml block layouts, checked by encoding known values the way ggml-quants.c's
/// <c>quantize_row_*_ref</c> packs them and decoding with the loader.
/// </summary>
public sealed class GgmlDequantizerTests
{
    [Fact]
    public void Q4_0_puts_low_nibbles_first_and_high_nibbles_second_each_minus_8_times_d()
    {
        var block = new byte[18];
        BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)0.5f)).CopyTo(block, 0);
        for (int j = 0; j < 16; j++) block[2 + j] = (byte)(j | ((15 - j) << 4));
        var y = new float[32];
        GgmlDequantizer.Dequantize(GgmlType.Q4_0, block, y);
        for (int j = 0; j < 16; j++)
        {
            Assert.Equal((j - 8) * 0.5f, y[j]);
            Assert.Equal((15 - j - 8) * 0.5f, y[j + 16]);
        }
    }

    [Fact]
    public void Q4_K_decodes_six_bit_scales_and_mins_per_sub_block_of_32()
    {
        var random = new Random(3);
        int[] sc = Enumerable.Range(0, 8).Select(_ => random.Next(64)).ToArray();
        int[] m = Enumerable.Range(0, 8).Select(_ => random.Next(64)).ToArray();
        int[] q = Enumerable.Range(0, 256).Select(_ => random.Next(16)).ToArray();
        float d = 0.25f, dmin = 0.125f;
        var block = new byte[144];
        BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)d)).CopyTo(block, 0);
        BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)dmin)).CopyTo(block, 2);
        // quantize_row_q4_K_ref's packing of 8 (scale, min) pairs into 12 bytes.
        for (int j = 0; j < 4; j++)
        {
            block[4 + j] = (byte)(sc[j] | ((sc[j + 4] >> 4) << 6));
            block[4 + j + 4] = (byte)(m[j] | ((m[j + 4] >> 4) << 6));
            block[4 + j + 8] = (byte)((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
        }
        // Each 64 values: 32 bytes, sub-block 2c in the low nibbles, 2c+1 in the high.
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                block[16 + 32 * c + l] = (byte)(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
        var y = new float[256];
        GgmlDequantizer.Dequantize(GgmlType.Q4_K, block, y);
        for (int i = 0; i < 256; i++)
            Assert.Equal(d * sc[i / 32] * q[i] - dmin * m[i / 32], y[i]);
    }

    [Fact]
    public void Q6_K_joins_low_and_high_bits_minus_32_with_a_signed_scale_per_16()
    {
        var random = new Random(4);
        int[] levels = Enumerable.Range(0, 256).Select(_ => random.Next(64)).ToArray();
        sbyte[] scales = Enumerable.Range(0, 16).Select(_ => (sbyte)random.Next(-128, 128)).ToArray();
        float d = 0.0625f;
        var block = new byte[210];
        // quantize_row_q6_K_ref's packing, per 128 values: ql 64 bytes, qh 32 bytes.
        for (int n = 0; n < 2; n++)
            for (int l = 0; l < 32; l++)
            {
                int j = 128 * n;
                block[64 * n + l] = (byte)((levels[j + l] & 0xF) | ((levels[j + l + 64] & 0xF) << 4));
                block[64 * n + l + 32] = (byte)((levels[j + l + 32] & 0xF) | ((levels[j + l + 96] & 0xF) << 4));
                block[128 + 32 * n + l] = (byte)((levels[j + l] >> 4) | ((levels[j + l + 32] >> 4) << 2) | ((levels[j + l + 64] >> 4) << 4) | ((levels[j + l + 96] >> 4) << 6));
            }
        for (int s = 0; s < 16; s++) block[192 + s] = (byte)scales[s];
        BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)d)).CopyTo(block, 208);
        var y = new float[256];
        GgmlDequantizer.Dequantize(GgmlType.Q6_K, block, y);
        for (int i = 0; i < 256; i++)
            Assert.Equal(d * scales[i / 16] * (levels[i] - 32), y[i]);
    }

    [Fact]
    public void An_unsupported_type_is_refused_by_name()
    {
        var e = Assert.Throws<InvalidDataException>(() => GgmlDequantizer.Dequantize(GgmlType.IQ2_XS, new byte[74], new float[256]));
        Assert.Contains("IQ2_XS", e.Message, StringComparison.Ordinal);
    }
}
