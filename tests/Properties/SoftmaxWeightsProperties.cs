using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Pipeline.Inference.Sampling;

namespace Pipeline.Properties;

/// <summary>
/// The sampler's softmax weights: one definition (scalar exp, lane block sums, block walk) that the
/// vector code reproduces bit for bit, that is exp to within two ulps, and whose draw is the plain
/// inverse-CDF walk up to rounding at a boundary.
/// </summary>
public sealed class SoftmaxWeightsProperties
{
    private static Gen<float[]> Logits =>
        from count in Gen.Frequency((1, Gen.Choose(1, 70)), (2, Gen.Choose(64, 700)))
        from logits in Gen.ArrayOf(SamplingGenerators.Logit, count)
        from anchor in Gen.Choose(0, count - 1)
        select Anchored(logits, anchor);

    private static Gen<float> Temperature => Gen.Elements(0.05f, 0.3f, 0.8f, 1f, 1.7f);

    [Property(MaxTest = 300)]
    public Property Fill_writes_the_scalar_exp_of_every_scaled_logit_and_the_lane_block_sums_bit_for_bit() =>
        Prop.ForAll(Logits.ToArbitrary(), Temperature.ToArbitrary(), (logits, temperature) =>
        {
            float max = logits.Max();
            var weights = new double[logits.Length];
            var blockSums = new double[SoftmaxWeights.BlockCount(logits.Length)];
            var total = SoftmaxWeights.Fill(logits, max, temperature, weights, blockSums);

            var expected = logits.Select(l => (double)SoftmaxWeights.Exp(SoftmaxWeights.Scaled(l, max, temperature))).ToArray();
            var (expectedSums, expectedTotal) = ReferenceSums(expected);
            return Bits(weights).SequenceEqual(Bits(expected)) && Bits(blockSums).SequenceEqual(Bits(expectedSums))
                && BitConverter.DoubleToInt64Bits(total) == BitConverter.DoubleToInt64Bits(expectedTotal);
        });

    [Property(MaxTest = 500)]
    public Property Exp_is_within_two_ulps_of_the_exact_exp_where_the_result_is_a_normal_float() =>
        Prop.ForAll(Gen.Choose(0, int.MaxValue).Select(i => (float)(-87.0 * i / int.MaxValue)).ToArbitrary(), x =>
        {
            float actual = SoftmaxWeights.Exp(x);
            double exact = Math.Exp(x);
            double ulp = MathF.BitIncrement((float)exact) - (float)exact;
            return (Math.Abs(actual - exact) <= 2 * ulp).Label($"exp({x}) = {actual}, exactly {exact}");
        });

    [Fact]
    public void Exp_is_exact_at_zero_zero_below_the_subnormals_and_within_one_subnormal_step_between()
    {
        Assert.Equal(1f, SoftmaxWeights.Exp(0f));
        Assert.Equal(1f, SoftmaxWeights.Exp(-0f));
        Assert.Equal(1f, SoftmaxWeights.Exp(3f)); // weights are relative to the maximum: x > 0 is taken as 0
        Assert.Equal(0f, SoftmaxWeights.Exp(float.NegativeInfinity));
        Assert.Equal(0f, SoftmaxWeights.Exp(-104f));
        for (float x = -103.9f; x < -87.4f; x += 0.37f)
            Assert.True(Math.Abs(SoftmaxWeights.Exp(x) - Math.Exp(x)) <= float.Epsilon, $"exp({x}) in the subnormals");
        Assert.Equal(0.5, SoftmaxWeights.Exp(-MathF.Log(2f)), 6);
    }

    [Property(MaxTest = 300)]
    public Property Draw_is_the_plain_id_order_walk_except_where_the_target_sits_within_rounding_of_a_boundary() =>
        Prop.ForAll(Logits.ToArbitrary(), Temperature.ToArbitrary(), Gen.Choose(0, int.MaxValue).ToArbitrary(), (logits, temperature, draw) =>
        {
            float max = logits.Max();
            double u = draw / (double)int.MaxValue * 0.999999;
            var weights = new double[logits.Length];
            var blockSums = new double[SoftmaxWeights.BlockCount(logits.Length)];
            var total = SoftmaxWeights.Fill(logits, max, temperature, weights, blockSums);
            int argmax = Array.IndexOf(logits, logits.Max());
            var token = SoftmaxWeights.Draw(logits, max, temperature, blockSums, u * total, argmax);

            // The plain walk: the first id whose left-to-right running sum passes u times the total.
            double target = u * total, cumulative = 0;
            int plain = -1;
            var nearBoundary = false;
            for (int id = 0; id < weights.Length && plain < 0; id++)
            {
                cumulative += weights[id];
                if (Math.Abs(cumulative - target) <= 1e-12 * total) nearBoundary = true;
                if (target < cumulative && weights[id] > 0) plain = id;
            }
            return (weights[token] > 0 && token == ReferenceDraw(weights, u, argmax) && (token == plain || nearBoundary))
                .Label($"token {token}, plain walk {plain}, reference {ReferenceDraw(weights, u, argmax)}");
        });

    [Fact]
    public void Draw_with_a_target_at_the_total_returns_the_last_possible_token_not_a_zero_weight_one()
    {
        // Weights 1/2, 1, 1/2 at ids 3, 130 and 131; ids 132..199 (and every other) weigh nothing.
        var logits = Enumerable.Repeat(float.NegativeInfinity, 200).ToArray();
        logits[3] = logits[131] = -MathF.Log(2f);
        logits[130] = 0f;
        var blockSums = new double[SoftmaxWeights.BlockCount(logits.Length)];
        var total = SoftmaxWeights.BlockSums(logits, 0f, 1f, blockSums);

        Assert.Equal(131, SoftmaxWeights.Draw(logits, 0f, 1f, blockSums, total, fallback: 130));
        Assert.Equal(131, SoftmaxWeights.Draw(logits, 0f, 1f, blockSums, 2 * total, fallback: 130));
        Assert.Equal(130, SoftmaxWeights.Draw(logits, 0f, 1f, blockSums, 0.6, fallback: 130));
        Assert.Equal(3, SoftmaxWeights.Draw(logits, 0f, 1f, blockSums, 0.0, fallback: 130));
    }

    [Property(MaxTest = 200)]
    public Property Block_sums_alone_are_fills_block_sums_and_total_bit_for_bit() =>
        Prop.ForAll(Logits.ToArbitrary(), Temperature.ToArbitrary(), (logits, temperature) =>
        {
            float max = logits.Max();
            var filled = new double[SoftmaxWeights.BlockCount(logits.Length)];
            var alone = new double[filled.Length];
            var fillTotal = SoftmaxWeights.Fill(logits, max, temperature, new double[logits.Length], filled);
            var total = SoftmaxWeights.BlockSums(logits, max, temperature, alone);
            return Bits(alone).SequenceEqual(Bits(filled)) && BitConverter.DoubleToInt64Bits(total) == BitConverter.DoubleToInt64Bits(fillTotal);
        });

    [Fact]
    public void Sums_over_32000_weights_differ_from_a_left_to_right_sum_only_by_rounding()
    {
        var random = new Random(3);
        var logits = Enumerable.Range(0, 32000).Select(_ => (float)(random.NextDouble() * 30 - 15)).ToArray();
        var weights = new double[logits.Length];
        var blockSums = new double[SoftmaxWeights.BlockCount(logits.Length)];
        var total = SoftmaxWeights.Fill(logits, logits.Max(), 0.8f, weights, blockSums);

        var plain = logits.Sum(l => Math.Exp((l - (double)logits.Max()) / 0.8f));
        Assert.Equal(1.0, total / plain, 5); // float weights: within a few float roundings
    }

    /// <summary>
    /// The specification of the block sums: lane (id − start) mod 8 in id order, in float,
    /// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)); the total adds them as doubles, blocks left to right.
    /// </summary>
    internal static (double[] BlockSums, double Total) ReferenceSums(double[] weights)
    {
        var sums = new double[SoftmaxWeights.BlockCount(weights.Length)];
        double total = 0;
        for (int b = 0; b < sums.Length; b++)
        {
            var l = new float[8];
            for (int id = b * SoftmaxWeights.BlockLength; id < Math.Min(weights.Length, (b + 1) * SoftmaxWeights.BlockLength); id++)
                l[(id - b * SoftmaxWeights.BlockLength) % 8] += (float)weights[id];
            sums[b] = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
            total += sums[b];
        }
        return (sums, total);
    }

    /// <summary>The specification of the draw: the block whose running sum passes u·total, then its ids in order.</summary>
    internal static int ReferenceDraw(double[] weights, double u, int fallback)
    {
        var (sums, total) = ReferenceSums(weights);
        double target = u * total, cumulative = 0;
        int last = fallback;
        for (int b = 0; b < sums.Length; b++)
        {
            int start = b * SoftmaxWeights.BlockLength, end = Math.Min(weights.Length, start + SoftmaxWeights.BlockLength);
            if (target < cumulative + sums[b])
            {
                for (int id = start; id < end; id++)
                {
                    if (weights[id] <= 0) continue;
                    cumulative += weights[id];
                    last = id;
                    if (target < cumulative) return id;
                }
                return last;
            }
            for (int id = start; id < end; id++) if (weights[id] > 0) last = id;
            cumulative += sums[b];
        }
        return last;
    }

    private static float[] Anchored(float[] logits, int anchor)
    {
        if (float.IsNegativeInfinity(logits[anchor])) logits[anchor] = 0f;
        return logits;
    }

    private static long[] Bits(double[] values) => values.Select(BitConverter.DoubleToInt64Bits).ToArray();
}
