using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Pipeline.Inference.Sampling;

/// <summary>
/// The sampler's softmax weights, exp((logit − max) · (1 / temperature)) in float (a multiply: a
/// vector divide cost more than the exp on the CPUs measured), their block sums and the
/// inverse-CDF walk over them: defined by fixed arithmetic (no fused multiply-add, a fixed sum
/// order), so every machine and every vector width gives the same bits, and vectorised, eight ids
/// a vector, so a 32,000-token draw costs tens of microseconds (the double-precision exp it
/// replaced took ~95 µs of a ~116 µs draw here; <see cref="Math.Exp"/> and a left-to-right sum ~300).
/// </summary>
/// <remarks>
/// <para>Exp: x is clamped to [−104, 0] (weights are relative to the maximum, so x ≤ 0; e^−104 is
/// below half the smallest float, so −∞ and anything under it give 0), n = round(x / ln 2) by the
/// 1.5·2²³ shifter, r = x − n·C1 − n·C2 (Cody–Waite, C1 = 0.693359375 has 9 bits so n·C1 is exact),
/// e^r by the degree-7 Taylor polynomial in Estrin's form (|r| ≤ 0.35: truncation under 6·10⁻⁹),
/// scaled by 2ⁿ as 2ⁿ⁺⁶⁴ then 2⁻⁶⁴ so subnormal results round once. The scalar <see cref="Exp"/>
/// and the vector path do the same IEEE operations in the same order, so they agree bit for bit
/// (SoftmaxWeightsProperties); the JIT never contracts a multiply and an add.</para>
/// <para>Sums: ids are grouped in blocks of <see cref="BlockLength"/>; within a block, id i adds (in
/// float) to lane (i − start) mod 8 in id order, and the block's sum is ((l0 + l1) + (l2 + l3)) +
/// ((l4 + l5) + (l6 + l7)); the total adds the block sums, as doubles, left to right. The walk finds
/// the first block whose running sum passes the target, then walks that block's ids in order.</para>
/// </remarks>
internal static class SoftmaxWeights
{
    /// <summary>Ids per block sum.</summary>
    public const int BlockLength = 64;

    private const int Lanes = 8;
    private const float LowestExponent = -104f;
    private const float Log2E = 1.44269504088896341f;
    private const float C1 = 0.693359375f;     // 9 significant bits
    private const float C2 = -2.12194440e-4f;  // ln 2 − C1
    private const float Shifter = 12582912f;   // 1.5 * 2^23: adding it rounds to an integer
    private const int ScaleBias = 127 + 64;
    private const float Unscale = 5.42101086e-20f; // 2^-64

    // 1/k! for k = 7 down to 2.
    private const float K7 = 1.98412698e-4f, K6 = 1.38888889e-3f, K5 = 8.33333333e-3f, K4 = 4.16666667e-2f, K3 = 1.66666667e-1f, K2 = 0.5f;

    /// <summary>Blocks needed for <paramref name="vocabulary"/> ids.</summary>
    public static int BlockCount(int vocabulary) => (vocabulary + BlockLength - 1) / BlockLength;

    /// <summary>e^x for x ≤ 0 (larger x is taken as 0), as the vector path computes it.</summary>
    public static float Exp(float x)
    {
        x = MathF.Min(MathF.Max(x, LowestExponent), 0f);
        float shifted = x * Log2E + Shifter;
        float n = shifted - Shifter;
        float r = x - n * C1;
        r = r - n * C2;
        float r2 = r * r, r4 = r2 * r2;
        float s0 = (1f + r) + (K2 + K3 * r) * r2, s1 = (K4 + K5 * r) + (K6 + K7 * r) * r2;
        float p = s0 + s1 * r4;
        int exponent = BitConverter.SingleToInt32Bits(shifted) - BitConverter.SingleToInt32Bits(Shifter) + ScaleBias;
        return p * BitConverter.Int32BitsToSingle(exponent << 23) * Unscale;
    }

    /// <summary>The x each id's weight is the exp of: (logit − max) · (1 / temperature), in float.</summary>
    public static float Scaled(float logit, float max, float temperature) => (logit - max) * (1f / temperature);

    /// <summary>
    /// Writes each id's weight <see cref="Exp"/>(<see cref="Scaled"/>(logit)) to <paramref name="weights"/>
    /// and each block's sum to <paramref name="blockSums"/>; returns the total (block sums left to right).
    /// </summary>
    public static double Fill(ReadOnlySpan<float> logits, float max, float temperature, Span<double> weights, Span<double> blockSums)
    {
        if (weights.Length < logits.Length) throw new ArgumentException("softmax scratch is shorter than the vocabulary");
        return Sums(logits, max, temperature, weights, blockSums);
    }

    /// <summary>
    /// As <see cref="Fill"/>, keeping only the block sums (a draw recomputes the one block it walks,
    /// so the vocabulary's weights are never written out); returns the total.
    /// </summary>
    public static double BlockSums(ReadOnlySpan<float> logits, float max, float temperature, Span<double> blockSums) =>
        Sums(logits, max, temperature, Span<double>.Empty, blockSums);

    // Block sums and their total; each id's weight also into `weights` unless it is empty.
    private static double Sums(ReadOnlySpan<float> logits, float max, float temperature, Span<double> weights, Span<double> blockSums)
    {
        int n = logits.Length, blocks = BlockCount(n);
        if (blockSums.Length < blocks) throw new ArgumentException("softmax scratch is shorter than the vocabulary");
        Span<float> scratch = stackalloc float[BlockLength];
        float inverse = 1f / temperature;
        double total = 0.0;
        for (int b = 0; b < blocks; b++)
        {
            int start = b * BlockLength, count = Math.Min(BlockLength, n - start);
            double sum = Block(logits, start, max, inverse, scratch[..count]);
            if (!weights.IsEmpty)
                for (int i = 0; i < count; i++) weights[start + i] = scratch[i];
            blockSums[b] = sum;
            total += sum;
        }
        return total;
    }

    /// <summary>
    /// The first id whose running weight passes <paramref name="target"/>: the first block whose running
    /// block sum passes it, then that block's ids in order, their weights recomputed as
    /// <see cref="Fill"/> computes them. Where rounding leaves the walk short, the last possible
    /// (positive-weight) id of that block, or of the whole vocabulary, is the answer; with none, <paramref name="fallback"/>.
    /// </summary>
    public static int Draw(ReadOnlySpan<float> logits, float max, float temperature, ReadOnlySpan<double> blockSums, double target, int fallback)
    {
        int n = logits.Length, blocks = BlockCount(n);
        float inverse = 1f / temperature;
        double cumulative = 0.0;
        Span<float> weights = stackalloc float[BlockLength];
        for (int b = 0; b < blocks; b++)
        {
            double next = cumulative + blockSums[b];
            if (target < next)
            {
                int start = b * BlockLength, count = Math.Min(BlockLength, n - start);
                Block(logits, start, max, inverse, weights[..count]);
                int lastPossible = fallback;
                for (int i = 0; i < count; i++)
                {
                    if (weights[i] <= 0) continue;
                    cumulative += weights[i];
                    lastPossible = start + i;
                    if (target < cumulative) return start + i;
                }
                return lastPossible;
            }
            cumulative = next;
        }
        // Past every block (rounding): the last id of positive weight, in the last block that has one.
        for (int b = blocks - 1; b >= 0; b--)
        {
            if (!(blockSums[b] > 0)) continue;
            int start = b * BlockLength, count = Math.Min(BlockLength, n - start);
            Block(logits, start, max, inverse, weights[..count]);
            for (int i = count - 1; i >= 0; i--)
                if (weights[i] > 0) return start + i;
        }
        return fallback;
    }

    /// <summary>
    /// The weights of the block of ids from <paramref name="start"/> (a multiple of <see cref="BlockLength"/>)
    /// into <paramref name="weights"/> (one per id of the block), and their sum in the fixed lane order.
    /// </summary>
    private static double Block(ReadOnlySpan<float> logits, int start, float max, float inverse, Span<float> weights)
    {
        if (weights.Length == BlockLength)
        {
            ref float logit0 = ref MemoryMarshal.GetReference(logits);
            ref float weight0 = ref MemoryMarshal.GetReference(weights);
            var maxV = Vector256.Create(max);
            var inverseV = Vector256.Create(inverse);
            var acc = Vector256<float>.Zero;
            for (int k = 0; k < BlockLength; k += Lanes)
            {
                var w = Exp((Vector256.LoadUnsafe(ref logit0, (nuint)(start + k)) - maxV) * inverseV);
                w.StoreUnsafe(ref weight0, (nuint)k);
                acc += w;
            }
            return LaneSum(acc.GetElement(0), acc.GetElement(1), acc.GetElement(2), acc.GetElement(3),
                acc.GetElement(4), acc.GetElement(5), acc.GetElement(6), acc.GetElement(7));
        }
        Span<float> lanes = stackalloc float[Lanes];
        for (int i = 0; i < weights.Length; i++)
        {
            float w = Exp((logits[start + i] - max) * inverse);
            weights[i] = w;
            lanes[i % Lanes] += w;
        }
        return LaneSum(lanes[0], lanes[1], lanes[2], lanes[3], lanes[4], lanes[5], lanes[6], lanes[7]);
    }

    private static float LaneSum(float l0, float l1, float l2, float l3, float l4, float l5, float l6, float l7) =>
        ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(LowestExponent)), Vector256<float>.Zero);
        var shifter = Vector256.Create(Shifter);
        var shifted = x * Vector256.Create(Log2E) + shifter;
        var n = shifted - shifter;
        var r = x - n * Vector256.Create(C1);
        r = r - n * Vector256.Create(C2);
        var r2 = r * r;
        var r4 = r2 * r2;
        var s0 = (Vector256.Create(1f) + r) + (Vector256.Create(K2) + Vector256.Create(K3) * r) * r2;
        var s1 = (Vector256.Create(K4) + Vector256.Create(K5) * r) + (Vector256.Create(K6) + Vector256.Create(K7) * r) * r2;
        var p = s0 + s1 * r4;
        var exponent = shifted.AsInt32() - shifter.AsInt32() + Vector256.Create(ScaleBias);
        return p * Vector256.ShiftLeft(exponent, 23).AsSingle() * Vector256.Create(Unscale);
    }
}
