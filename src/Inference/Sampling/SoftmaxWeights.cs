using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Pipeline.Inference.Sampling;

/// <summary>
/// The sampler's softmax weights, exp((logit − max) · (1 / temperature)) in double (a multiply: a
/// vector divide cost more than the exp on the CPUs measured), their block sums and
/// the inverse-CDF walk over them: defined by fixed arithmetic (no fused multiply-add, a fixed sum
/// order), so every machine and every vector width gives the same bits, and vectorised, so a
/// 32,000-token draw costs tens of microseconds instead of the ~300 that <see cref="Math.Exp"/> and a
/// left-to-right sum took.
/// </summary>
/// <remarks>
/// <para>Exp: x is clamped to [−750, 0] (weights are relative to the maximum, so x ≤ 0; −∞ gives 0),
/// n = round(x / ln 2) by the 1.5·2⁵² shifter, r = x − n·ln2hi − n·ln2lo (Cody–Waite, ln2hi has 32
/// bits so n·ln2hi is exact), e^r by the degree-13 Taylor polynomial in Estrin's form (|r| ≤ 0.35; short
/// dependency chains, which is what bounds it), scaled by 2ⁿ as 2ⁿ⁺⁵⁴⁰ then 2⁻⁵⁴⁰ so subnormal results round once. The scalar
/// <see cref="Exp"/> and the vector path do the same IEEE operations in the same order, so they agree
/// bit for bit (SoftmaxWeightsProperties); the JIT never contracts a multiply and an add.</para>
/// <para>Sums: ids are grouped in blocks of <see cref="BlockLength"/>; within a block, id i adds to
/// lane (i − start) mod 4 in id order, and the block's sum is (lane0 + lane1) + (lane2 + lane3); the
/// total adds block sums left to right. The walk finds the first block whose running sum passes the
/// target, then walks that block's ids in order.</para>
/// </remarks>
internal static class SoftmaxWeights
{
    /// <summary>Ids per block sum.</summary>
    public const int BlockLength = 64;

    private const int Lanes = 4;
    private const double LowestExponent = -750.0;
    private const double Log2E = 1.4426950408889634;
    private const double Ln2Hi = 6.93147180369123816490e-01; // 32 significant bits
    private const double Ln2Lo = 1.90821492927058770002e-10;
    private const double Shifter = 6755399441055744.0;       // 1.5 * 2^52: adding it rounds to an integer
    private const long ScaleBias = 1023 + 540;
    private const double Unscale = 2.778448436856347e-163;    // 2^-540

    // 1/k! for k = 13 down to 2.
    private const double C13 = 1.6059043836821613e-10, C12 = 2.08767569878681e-09, C11 = 2.505210838544172e-08,
        C10 = 2.755731922398589e-07, C9 = 2.7557319223985893e-06, C8 = 2.48015873015873e-05,
        C7 = 1.984126984126984e-04, C6 = 1.388888888888889e-03, C5 = 8.333333333333333e-03,
        C4 = 4.1666666666666664e-02, C3 = 1.6666666666666666e-01, C2 = 0.5;

    /// <summary>Blocks needed for <paramref name="vocabulary"/> ids.</summary>
    public static int BlockCount(int vocabulary) => (vocabulary + BlockLength - 1) / BlockLength;

    /// <summary>e^x for x ≤ 0 (larger x is taken as 0), as the vector path computes it.</summary>
    public static double Exp(double x)
    {
        x = Math.Min(Math.Max(x, LowestExponent), 0.0);
        double shifted = x * Log2E + Shifter;
        double n = shifted - Shifter;
        double r = x - n * Ln2Hi;
        r = r - n * Ln2Lo;
        double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
        double s0 = (1.0 + r) + (C2 + C3 * r) * r2, s1 = (C4 + C5 * r) + (C6 + C7 * r) * r2;
        double s2 = (C8 + C9 * r) + (C10 + C11 * r) * r2, s3 = C12 + C13 * r;
        double p = (s0 + s1 * r4) + (s2 + s3 * r4) * r8;
        long exponent = BitConverter.DoubleToInt64Bits(shifted) - BitConverter.DoubleToInt64Bits(Shifter) + ScaleBias;
        return p * BitConverter.Int64BitsToDouble(exponent << 52) * Unscale;
    }

    /// <summary>
    /// Writes each id's weight <see cref="Exp"/>((logit − max) · (1 / temperature)) to <paramref name="weights"/>
    /// and each block's sum to <paramref name="blockSums"/>; returns the total (block sums left to right).
    /// </summary>
    public static double Fill(ReadOnlySpan<float> logits, double max, double temperature, Span<double> weights, Span<double> blockSums)
    {
        int n = logits.Length, blocks = BlockCount(n);
        if (weights.Length < n || blockSums.Length < blocks) throw new ArgumentException("softmax scratch is shorter than the vocabulary");
        double total = 0.0, inverse = 1.0 / temperature;
        for (int b = 0; b < blocks; b++)
        {
            int start = b * BlockLength;
            double sum = Block(logits, start, max, inverse, weights.Slice(start, Math.Min(BlockLength, n - start)));
            blockSums[b] = sum;
            total += sum;
        }
        return total;
    }

    /// <summary>
    /// As <see cref="Fill"/>, keeping only the block sums (a draw recomputes the one block it walks,
    /// so the vocabulary's weights are never written out); returns the total.
    /// </summary>
    public static double BlockSums(ReadOnlySpan<float> logits, double max, double temperature, Span<double> blockSums)
    {
        int n = logits.Length, blocks = BlockCount(n);
        if (blockSums.Length < blocks) throw new ArgumentException("softmax scratch is shorter than the vocabulary");
        Span<double> scratch = stackalloc double[BlockLength];
        double total = 0.0, inverse = 1.0 / temperature;
        for (int b = 0; b < blocks; b++)
        {
            int start = b * BlockLength;
            double sum = Block(logits, start, max, inverse, scratch[..Math.Min(BlockLength, n - start)]);
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
    public static int Draw(ReadOnlySpan<float> logits, double max, double temperature, ReadOnlySpan<double> blockSums, double target, int fallback)
    {
        int n = logits.Length, blocks = BlockCount(n);
        double inverse = 1.0 / temperature, cumulative = 0.0;
        Span<double> weights = stackalloc double[BlockLength];
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
    private static double Block(ReadOnlySpan<float> logits, int start, double max, double inverse, Span<double> weights)
    {
        if (weights.Length == BlockLength)
        {
            ref float logit0 = ref MemoryMarshal.GetReference(logits);
            ref double weight0 = ref MemoryMarshal.GetReference(weights);
            var maxV = Vector256.Create(max);
            var inverseV = Vector256.Create(inverse);
            var acc = Vector256<double>.Zero;
            for (int k = 0; k < BlockLength; k += 2 * Lanes)
            {
                var v = Vector256.LoadUnsafe(ref logit0, (nuint)(start + k));
                var lower = Exp((Vector256.WidenLower(v) - maxV) * inverseV);
                var upper = Exp((Vector256.WidenUpper(v) - maxV) * inverseV);
                lower.StoreUnsafe(ref weight0, (nuint)k);
                upper.StoreUnsafe(ref weight0, (nuint)(k + Lanes));
                acc += lower;
                acc += upper;
            }
            return (acc.GetElement(0) + acc.GetElement(1)) + (acc.GetElement(2) + acc.GetElement(3));
        }
        Span<double> lanes = stackalloc double[Lanes];
        for (int i = 0; i < weights.Length; i++)
        {
            double w = Exp((logits[start + i] - max) * inverse);
            weights[i] = w;
            lanes[i % Lanes] += w;
        }
        return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> Exp(Vector256<double> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(LowestExponent)), Vector256<double>.Zero);
        var shifter = Vector256.Create(Shifter);
        var shifted = x * Vector256.Create(Log2E) + shifter;
        var n = shifted - shifter;
        var r = x - n * Vector256.Create(Ln2Hi);
        r = r - n * Vector256.Create(Ln2Lo);
        var r2 = r * r;
        var r4 = r2 * r2;
        var r8 = r4 * r4;
        var s0 = (Vector256.Create(1.0) + r) + (Vector256.Create(C2) + Vector256.Create(C3) * r) * r2;
        var s1 = (Vector256.Create(C4) + Vector256.Create(C5) * r) + (Vector256.Create(C6) + Vector256.Create(C7) * r) * r2;
        var s2 = (Vector256.Create(C8) + Vector256.Create(C9) * r) + (Vector256.Create(C10) + Vector256.Create(C11) * r) * r2;
        var s3 = Vector256.Create(C12) + Vector256.Create(C13) * r;
        var p = (s0 + s1 * r4) + (s2 + s3 * r4) * r8;
        var exponent = shifted.AsInt64() - shifter.AsInt64() + Vector256.Create(ScaleBias);
        return p * Vector256.ShiftLeft(exponent, 52).AsDouble() * Vector256.Create(Unscale);
    }
}
