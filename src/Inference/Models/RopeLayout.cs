namespace Pipeline.Inference.Models;

/// <summary>
/// Converts query/key rows between the two RoPE layouts. Hugging Face checkpoints rotate halves:
/// within a head, element i pairs with i + head_dim/2. llama2.c, Meta and llama.cpp's GGUF (for
/// llama) rotate interleaved pairs (2i, 2i+1). The graph rotates interleaved pairs, so rotate-half
/// tensors are permuted at load: interleaved row 2i+j of a head is rotate-half row j·head_dim/2 + i
/// (llama.cpp's convert_hf_to_gguf permute). Dot products within a head are unchanged by the
/// permutation, so attention is the same; everything indexed by q/k row (biases, per-head norm
/// weights) is permuted the same way.
/// </summary>
internal static class RopeLayout
{
    /// <summary>
    /// Permutes <paramref name="rows"/> rows of <paramref name="rowLength"/> floats from rotate-half to
    /// interleaved order within each head of <paramref name="headDim"/> rows (rows = heads·head_dim).
    /// A vector (bias, norm weight) is rows of length 1.
    /// </summary>
    public static float[] RotateHalfToInterleaved(float[] data, int rows, long rowLength, int headDim)
    {
        if (rows % headDim != 0 || data.LongLength != rows * rowLength)
            throw new InvalidDataException($"cannot permute {data.LongLength} floats as {rows} rows of {rowLength} in heads of {headDim}");
        var result = new float[data.LongLength];
        int half = headDim / 2;
        for (int head = 0; head < rows / headDim; head++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                {
                    long from = ((long)head * headDim + j * half + i) * rowLength;
                    long to = ((long)head * headDim + 2 * i + j) * rowLength;
                    Array.Copy(data, from, result, to, rowLength);
                }
        return result;
    }
}
