using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Pipeline.Inference.Sampling;

namespace Pipeline.Properties;

/// <summary>P4: sampling is a pure, replayable function of (logits, options, seed, draw index, history).</summary>
public sealed class SamplerProperties
{
    [Property]
    public Property Sample_same_seed_and_draw_index_returns_same_token() =>
        Prop.ForAll(SamplingGenerators.ArbitraryCases, c =>
            Sample(c) == Sample(c with { Logits = (float[])c.Logits.Clone(), History = (int[])c.History.Clone() }));

    [Property]
    public Property Sample_any_case_returns_a_token_the_final_distribution_keeps_with_positive_probability() =>
        Prop.ForAll(SamplingGenerators.ArbitraryCases, c =>
        {
            var token = Sample(c);
            if (c.Options.Temperature == 0 || c.Options.TopK == 1) return token == ReferenceArgmax(c);
            return Sampler.Distribution(c.Logits, c.Options, c.History).Any(e => e.Id == token && e.P > 0);
        });

    [Property(MaxTest = 1000)]
    public Property Distribution_any_case_matches_the_reference_filter_chain() =>
        Prop.ForAll(SamplingGenerators.ArbitraryCases, c =>
        {
            var actual = Sampler.Distribution(c.Logits, c.Options, c.History);
            var expected = ReferenceDistribution(c.Logits, c.Options, c.History);
            // Float weights (SoftmaxWeights) against the double reference: within a few float roundings.
            // Below a millionth, float exps run out (e^x under e^-104 is 0, where the double reference
            // still ranks tokens by value), so there neither rank order nor which of them top-k keeps is the same.
            int likely = expected.TakeWhile(e => e.P >= 1e-6).Count();
            return actual.Count == expected.Count
                && actual.Take(likely).Zip(expected).All(p => p.First.Id == p.Second.Id && Math.Abs(p.First.P - p.Second.P) < 1e-6)
                && actual.Skip(likely).All(e => e.P < 2e-6)
                && Math.Abs(actual.Sum(e => e.P) - 1.0) < 1e-9;
        });

    [Property]
    public Property Sample_temperature_zero_returns_argmax_with_lowest_id_on_ties_whatever_the_seed() =>
        Prop.ForAll(SamplingGenerators.ArbitraryCases, c =>
        {
            var greedy = c with { Options = c.Options with { Temperature = 0 } };
            return Sample(greedy) == ReferenceArgmax(greedy);
        });

    [Property]
    public Property Sample_top_k_one_returns_argmax_with_lowest_id_on_ties_whatever_the_seed() =>
        Prop.ForAll(SamplingGenerators.ArbitraryCases, c =>
        {
            var greedy = c with { Options = c.Options with { TopK = 1, Temperature = Math.Max(c.Options.Temperature, 0.5f) } };
            return Sample(greedy) == ReferenceArgmax(greedy);
        });

    [Property]
    public Property Sample_with_no_filter_walks_the_vocabulary_in_id_order_to_u_times_the_total_weight() =>
        Prop.ForAll(SamplingGenerators.ArbitraryCases, c =>
        {
            var unfiltered = c with { Options = c.Options with { TopK = 0, TopP = 1f, MinP = 0f, Temperature = Math.Max(c.Options.Temperature, 0.05f) } };
            // Reference: weights exp((l - max) · (1 / T)) over the penalised logits, walked in id order
            // (block by block: SoftmaxWeightsProperties shows that is the plain walk up to rounding).
            var logits = Penalised(unfiltered.Logits, unfiltered.Options, unfiltered.History);
            float max = logits.Max(), t = unfiltered.Options.Temperature;
            var weights = logits.Select(l => (double)SoftmaxWeights.Exp(SoftmaxWeights.Scaled(l, max, t))).ToArray();
            var u = CounterRandom.NextDouble(unfiltered.Seed, unfiltered.DrawIndex);
            var expected = SoftmaxWeightsProperties.ReferenceDraw(weights, u, Array.IndexOf(logits, logits.Max()));
            return Sample(unfiltered) == expected;
        });

    [Fact]
    public void Sample_all_logits_tied_greedy_returns_token_zero()
    {
        var logits = new float[32];

        Assert.Equal(0, Sampler.Sample(logits, new SamplingOptions { Temperature = 0 }, 7, 3, []));
    }

    [Property(MaxTest = 50)]
    public Property Sample_different_draw_indices_spread_over_a_uniform_vocabulary() =>
        Prop.ForAll(SamplingGenerators.Seed.ToArbitrary(), seed =>
        {
            // 256 draws from 16 equally likely tokens: seeing fewer than 12 distinct tokens has
            // probability below 1e-12, so this only fails if the draws are not varying with the index.
            var logits = new float[16];
            var seen = Enumerable.Range(0, 256)
                .Select(i => Sampler.Sample(logits, new SamplingOptions(), seed, i, []))
                .Distinct().Count();
            return seen >= 12;
        });

    [Fact]
    public void Sample_vocabulary_of_32000_samples_the_dominant_token()
    {
        var logits = new float[32000];
        logits[31999] = 50f;

        Assert.Equal(31999, Sampler.Sample(logits, new SamplingOptions { TopP = 0.9f }, 1, 0, [5, 31999]));
    }

    [Fact]
    public void Sample_warm_call_over_vocabulary_of_32000_allocates_nothing()
    {
        var logits = Enumerable.Range(0, 32000).Select(i => (float)Math.Sin(i)).ToArray();
        int[] history = [1, 2, 3, 3];
        var options = new SamplingOptions { Temperature = 0.8f, TopK = 40, TopP = 0.95f, MinP = 0.01f, RepetitionPenalty = 1.1f };
        Sampler.Sample(logits, options, 42, 0, history); // warms the pools and the JIT

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 1; i <= 10; i++) Sampler.Sample(logits, options, 42, i, history);

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Sample_repetition_penalty_divides_positive_and_multiplies_negative_logits_once_per_distinct_token()
    {
        // Token 0: 2 / 2 = 1; token 1: 1.5 (not in history); token 2 has -1 * 2 = -2. Applying the penalty
        // twice to token 0 (it appears twice) would give 0.5; either way greedy picks token 1.
        float[] logits = [2f, 1.5f, -1f];
        var options = new SamplingOptions { RepetitionPenalty = 2f };

        var distribution = Sampler.Distribution(logits, options, [0, 0, 2]);
        var expected = Softmax([1f, 1.5f, -2f]);

        Assert.Equal([1, 0, 2], distribution.Select(e => e.Id));
        Assert.Equal(expected[1], distribution[0].P, 6);
        Assert.Equal(expected[0], distribution[1].P, 6);
        Assert.Equal(1, Sampler.Sample(logits, options with { Temperature = 0 }, 0, 0, [0, 0, 2]));
    }

    [Fact]
    public void Sample_history_id_outside_vocabulary_throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Sampler.Sample([1f, 2f], new SamplingOptions(), 0, 0, [2]));
    }

    [Fact]
    public void Sample_nan_logit_throws()
    {
        Assert.Throws<ArgumentException>(() => Sampler.Sample([1f, float.NaN], new SamplingOptions(), 0, 0, []));
    }

    // ---- Reference model ------------------------------------------------------------------------
    // A deliberately naive restatement (shared with the goodness-of-fit tests) of the filter chain (LINQ, no buffers) that the optimised
    // sampler is checked against.

    private static int Sample(SamplingCase c) => Sampler.Sample(c.Logits, c.Options, c.Seed, c.DrawIndex, c.History);

    private static float[] Penalised(float[] logits, SamplingOptions options, int[] history)
    {
        var result = (float[])logits.Clone();
        foreach (var id in history.Distinct())
            result[id] = result[id] > 0 ? result[id] / options.RepetitionPenalty : result[id] * options.RepetitionPenalty;
        return result;
    }

    private static int ReferenceArgmax(SamplingCase c)
    {
        var penalised = Penalised(c.Logits, c.Options, c.History);
        var max = penalised.Max();
        return Array.IndexOf(penalised, max);
    }

    private static double[] Softmax(float[] logits, double temperature = 1)
    {
        var max = logits.Max();
        var exps = logits.Select(l => Math.Exp((l - (double)max) / temperature)).ToArray();
        var sum = exps.Sum();
        return exps.Select(e => e / sum).ToArray();
    }

    internal static List<(int Id, double P)> ReferenceDistribution(float[] logits, SamplingOptions options, int[] history)
    {
        var penalised = Penalised(logits, options, history);
        if (options.Temperature == 0 || options.TopK == 1) return [(Array.IndexOf(penalised, penalised.Max()), 1.0)];
        var probabilities = Softmax(penalised, options.Temperature);
        var ordered = probabilities.Select((p, id) => (Id: id, P: p)).OrderByDescending(e => e.P).ThenBy(e => e.Id).ToList();
        if (options.TopK > 0) ordered = ordered.Take(options.TopK).ToList();
        if (options.TopP < 1)
        {
            var mass = ordered.Sum(e => e.P);
            var keep = 0;
            var cumulative = 0.0;
            while (keep < ordered.Count && (keep == 0 || cumulative < options.TopP * (double)mass))
                cumulative += ordered[keep++].P;
            ordered = ordered.Take(keep).ToList();
        }
        var threshold = options.MinP * ordered[0].P;
        ordered = ordered.Where(e => e.P >= threshold).ToList();
        var total = ordered.Sum(e => e.P);
        return ordered.Select(e => (e.Id, Math.Round(e.P / total, 12))).ToList();
    }
}
