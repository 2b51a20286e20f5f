using FsCheck;
using FsCheck.Fluent;
using Pipeline.Inference.Sampling;

namespace Pipeline.Properties;

/// <summary>One sampler input: everything <see cref="Sampler.Sample"/> reads.</summary>
public sealed record SamplingCase(float[] Logits, SamplingOptions Options, ulong Seed, long DrawIndex, int[] History)
{
    // FsCheck prints the counterexample with ToString; arrays need spelling out to be replayable by eye.
    public override string ToString() =>
        $"logits=[{string.Join(", ", Logits.Select(l => l.ToString("R")))}] options={Options} " +
        $"seed={Seed} drawIndex={DrawIndex} history=[{string.Join(", ", History)}]";
}

/// <summary>Generators for the sampling properties, as named members of one class.</summary>
public static class SamplingGenerators
{
    /// <summary>Mostly spread-out logits, sometimes small integers so that ties (and tie-breaking) are common.</summary>
    public static Gen<float> Logit =>
        Gen.Frequency(
            (3, Gen.Choose(-2000, 2000).Select(x => x / 100f)),
            (2, Gen.Choose(-3, 3).Select(x => (float)x)),
            (1, Gen.Constant(float.NegativeInfinity)));

    /// <summary>
    /// Vocabularies of 1..64 tokens, sometimes up to 200 (past the softmax's 64-id blocks), with at least
    /// one finite logit (all -inf is rejected by the sampler).
    /// </summary>
    public static Gen<float[]> Logits =>
        from count in Gen.Frequency((4, Gen.Choose(1, 64)), (1, Gen.Choose(65, 200)))
        from logits in Gen.ArrayOf(Logit, count)
        from anchor in Gen.Choose(0, count - 1)
        select EnsureFinite(logits, anchor);

    public static Gen<ulong> Seed =>
        from high in Gen.Choose(0, int.MaxValue)
        from low in Gen.Choose(0, int.MaxValue)
        from flip in Gen.Elements(0UL, 0x8000_0000_8000_0000UL)
        select (((ulong)high << 32) | (uint)low) ^ flip;

    public static Gen<long> DrawIndex =>
        Gen.OneOf(
            Gen.Choose(0, 4096).Select(i => (long)i),
            from high in Gen.Choose(0, int.MaxValue) from low in Gen.Choose(0, int.MaxValue)
            select ((long)high << 32) | (uint)low);

    /// <summary>Valid options only; temperature 0 and top-k 1 (the greedy cases) come up regularly.</summary>
    public static Gen<SamplingOptions> Options =>
        from temperature in Gen.Frequency((1, Gen.Constant(0f)), (5, Gen.Choose(1, 300).Select(x => x / 100f)))
        from topP in Gen.Frequency((2, Gen.Constant(1f)), (3, Gen.Choose(1, 1000).Select(x => x / 1000f)))
        from topK in Gen.Frequency((2, Gen.Constant(0)), (3, Gen.Choose(1, 70)))
        from minP in Gen.Frequency((2, Gen.Constant(0f)), (3, Gen.Choose(0, 999).Select(x => x / 1000f)))
        from penalty in Gen.Frequency((2, Gen.Constant(1f)), (3, Gen.Choose(1, 300).Select(x => x / 100f)))
        select new SamplingOptions
        {
            Temperature = temperature, TopP = topP, TopK = topK, MinP = minP, RepetitionPenalty = penalty,
        };

    public static Gen<int[]> HistoryFor(int vocabularyCount) =>
        Gen.Choose(0, 20).SelectMany(n => Gen.ArrayOf(Gen.Choose(0, vocabularyCount - 1), n));

    public static Gen<SamplingCase> Cases =>
        from logits in Logits
        from options in Options
        from seed in Seed
        from drawIndex in DrawIndex
        from history in HistoryFor(logits.Length)
        select new SamplingCase(logits, options, seed, drawIndex, history);

    public static Arbitrary<SamplingCase> ArbitraryCases => Cases.ToArbitrary();

    private static float[] EnsureFinite(float[] logits, int anchor)
    {
        if (float.IsNegativeInfinity(logits[anchor])) logits[anchor] = 0f;
        return logits;
    }
}
