namespace Pipeline.Inference.Onnx;

/// <summary>
/// Symmetric block quantization of a [rows, cols] weight (rows = output features N, cols = the
/// reduction axis K) into the layout of ONNX Runtime's 8-bit <c>MatMulNBits</c>: B [N, blocks, 32]
/// unsigned, with the default zero point 128, and scales [N·blocks]. A block is 32 weights along K;
/// a K that is not a multiple of 32 is padded with the zero point (a weight of exactly 0).
/// </summary>
/// <remarks>
/// The rounding is ggml's, so a weight quantized here equals llama-quantize's for Q8_0
/// (d = max|x| / 127, q = round(x / d)) and Q4_0 (d = the signed extreme / −8, q = min(15, trunc(x / d + 8.5))).
/// A 4-bit grid is stored one value per byte (q − 8 + 128) and run by the 8-bit kernel: ONNX Runtime
/// 1.31's 4-bit kernels on this CPU give a row different bits in a batch than alone (P6 falsified
/// them at accuracy levels 0 and 4), while its 8-bit int8-compute kernel passes P6.
/// </remarks>
internal static class BlockQuantizer
{
    public const int BlockSize = 32;

    /// <summary>Blocks per row: ceil(cols / 32).</summary>
    public static int Blocks(int cols) => (cols + BlockSize - 1) / BlockSize;

    /// <summary>Bits per stored weight: always 8 (see the remarks).</summary>
    public const int StorageBits = 8;

    /// <summary>Bytes per stored block.</summary>
    public const int BlobBytes = BlockSize * StorageBits / 8;

    /// <summary>Quantizes <paramref name="matrix"/> [rows, cols] to the <paramref name="bits"/>-bit grid; returns (B, scales).</summary>
    public static (byte[] Packed, float[] Scales) Quantize(ReadOnlySpan<float> matrix, int rows, int cols, int bits)
    {
        if (bits is not (4 or 8)) throw new ArgumentOutOfRangeException(nameof(bits), bits, "only 4 and 8 bits");
        if (matrix.Length != (long)rows * cols)
            throw new InvalidDataException($"weight has {matrix.Length} floats, expected [{rows}, {cols}]");
        int blocks = Blocks(cols), blob = BlobBytes;
        var packed = new byte[(long)rows * blocks * blob];
        var scales = new float[(long)rows * blocks];
        Span<float> block = stackalloc float[BlockSize];
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < blocks; b++)
            {
                block.Clear();
                int start = b * BlockSize, count = Math.Min(BlockSize, cols - start);
                matrix.Slice(r * cols + start, count).CopyTo(block);
                long at = ((long)r * blocks + b) * blob;
                scales[(long)r * blocks + b] = bits == 8
                    ? Q8(block, packed.AsSpan((int)at, blob))
                    : Q4(block, packed.AsSpan((int)at, blob));
            }
        return (packed, scales);
    }

    private static float Q8(ReadOnlySpan<float> x, Span<byte> output)
    {
        float amax = 0;
        foreach (var v in x) amax = Math.Max(amax, Math.Abs(v));
        float d = amax / 127f, id = d != 0 ? 1f / d : 0f;
        for (int i = 0; i < BlockSize; i++) output[i] = (byte)(Math.Clamp((int)MathF.Round(x[i] * id), -127, 127) + 128);
        return d;
    }

    private static float Q4(ReadOnlySpan<float> x, Span<byte> output)
    {
        float amax = 0, max = 0;
        foreach (var v in x)
            if (Math.Abs(v) > amax) { amax = Math.Abs(v); max = v; }
        float d = max / -8f, id = d != 0 ? 1f / d : 0f;
        for (int i = 0; i < BlockSize; i++) output[i] = (byte)(Math.Clamp((int)(x[i] * id + 8.5f), 0, 15) - 8 + 128);
        return d;
    }
}
