using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Pipeline.Inference.Models.Gguf;

/// <summary>
/// Widens ggml tensor data to float32, block layouts as ggml-common.h defines them and
/// arithmetic as ggml-quants.c's <c>dequantize_row_*</c> does it (float products of the fp16
/// scale and the integer quant), so a dequantized weight is the value llama.cpp computes with.
/// </summary>
internal static class GgmlDequantizer
{
    private const int QK = 32;    // elements per block of Q4_0, Q8_0
    private const int QKK = 256;  // elements per super-block of the K-quants

    public static bool Supports(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16
        or GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_K or GgmlType.Q6_K;

    /// <summary>Writes the <paramref name="output"/>.Length values encoded in <paramref name="data"/> (whole blocks) into <paramref name="output"/>.</summary>
    public static void Dequantize(GgmlType type, ReadOnlySpan<byte> data, Span<float> output)
    {
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.Cast<byte, float>(data)[..output.Length].CopyTo(output);
                break;
            case GgmlType.F16:
            {
                var halves = MemoryMarshal.Cast<byte, Half>(data);
                for (int i = 0; i < output.Length; i++) output[i] = (float)halves[i];
                break;
            }
            case GgmlType.BF16:
            {
                var halves = MemoryMarshal.Cast<byte, ushort>(data);
                for (int i = 0; i < output.Length; i++) output[i] = BitConverter.Int32BitsToSingle(halves[i] << 16);
                break;
            }
            case GgmlType.Q8_0: Q8_0(data, output); break;
            case GgmlType.Q4_0: Q4_0(data, output); break;
            case GgmlType.Q4_K: Q4_K(data, output); break;
            case GgmlType.Q6_K: Q6_K(data, output); break;
            default: throw new InvalidDataException($"ggml type {type} cannot be dequantized here (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)");
        }
    }

    private static float Fp16(ReadOnlySpan<byte> b) => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(b));

    /// <summary>block_q8_0 { half d; int8 qs[32]; }: x = qs·d.</summary>
    private static void Q8_0(ReadOnlySpan<byte> data, Span<float> y)
    {
        for (int b = 0; b < y.Length / QK; b++)
        {
            var block = data.Slice(b * 34, 34);
            float d = Fp16(block);
            for (int j = 0; j < QK; j++) y[b * QK + j] = (sbyte)block[2 + j] * d;
        }
    }

    /// <summary>block_q4_0 { half d; uint8 qs[16]; }: low nibbles are elements 0..15, high nibbles 16..31, each (q − 8)·d.</summary>
    private static void Q4_0(ReadOnlySpan<byte> data, Span<float> y)
    {
        for (int b = 0; b < y.Length / QK; b++)
        {
            var block = data.Slice(b * 18, 18);
            float d = Fp16(block);
            for (int j = 0; j < QK / 2; j++)
            {
                y[b * QK + j] = ((block[2 + j] & 0x0F) - 8) * d;
                y[b * QK + j + QK / 2] = ((block[2 + j] >> 4) - 8) * d;
            }
        }
    }

    /// <summary>
    /// block_q4_K { half d; half dmin; uint8 scales[12]; uint8 qs[128]; }: 8 sub-blocks of 32, each
    /// with a 6-bit scale and min (get_scale_min_k4); x = d·sc·q − dmin·m.
    /// </summary>
    private static void Q4_K(ReadOnlySpan<byte> data, Span<float> y)
    {
        for (int b = 0; b < y.Length / QKK; b++)
        {
            var block = data.Slice(b * 144, 144);
            float d = Fp16(block), min = Fp16(block[2..]);
            var scales = block.Slice(4, 12);
            var q = block.Slice(16, 128);
            var output = y.Slice(b * QKK, QKK);
            int o = 0, qi = 0;
            for (int j = 0, s = 0; j < QKK; j += 64, s += 2)
            {
                ScaleMinK4(s, scales, out int sc1, out int m1);
                ScaleMinK4(s + 1, scales, out int sc2, out int m2);
                float d1 = d * sc1, dm1 = min * m1, d2 = d * sc2, dm2 = min * m2;
                for (int l = 0; l < 32; l++) output[o++] = d1 * (q[qi + l] & 0xF) - dm1;
                for (int l = 0; l < 32; l++) output[o++] = d2 * (q[qi + l] >> 4) - dm2;
                qi += 32;
            }
        }
    }

    private static void ScaleMinK4(int j, ReadOnlySpan<byte> q, out int scale, out int min)
    {
        if (j < 4)
        {
            scale = q[j] & 63;
            min = q[j + 4] & 63;
        }
        else
        {
            scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }

    /// <summary>
    /// block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d; }: 6-bit quants (4 low
    /// bits in ql, 2 high in qh) minus 32, 16 sub-blocks of 16 with an 8-bit scale; x = d·sc·q.
    /// </summary>
    private static void Q6_K(ReadOnlySpan<byte> data, Span<float> y)
    {
        for (int b = 0; b < y.Length / QKK; b++)
        {
            var block = data.Slice(b * 210, 210);
            float d = Fp16(block[208..]);
            var output = y.Slice(b * QKK, QKK);
            for (int n = 0; n < 2; n++)
            {
                var ql = block.Slice(64 * n, 64);
                var qh = block.Slice(128 + 32 * n, 32);
                var sc = MemoryMarshal.Cast<byte, sbyte>(block.Slice(192 + 8 * n, 8));
                var yy = output.Slice(128 * n, 128);
                for (int l = 0; l < 32; l++)
                {
                    int s = l / 16;
                    int q1 = (sbyte)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = (sbyte)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = (sbyte)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = (sbyte)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    yy[l] = d * sc[s] * q1;
                    yy[l + 32] = d * sc[s + 2] * q2;
                    yy[l + 64] = d * sc[s + 4] * q3;
                    yy[l + 96] = d * sc[s + 6] * q4;
                }
            }
        }
    }
}
