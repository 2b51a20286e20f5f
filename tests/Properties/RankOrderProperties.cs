using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Pipeline.Inference.Sampling;

namespace Pipeline.Properties;

/// <summary>
/// The sampler's radix ranking gives exactly the order (and the same probability bits) that the
/// comparison sort it replaced gave, so no sampled token changed with it.
/// </summary>
public sealed class RankOrderProperties
{
    /// <summary>Probabilities with many exact ties, zeros (underflowed exponentials) and subnormals.</summary>
    private static Gen<double[]> Probabilities =>
        from count in Gen.Choose(1, 3000)
        from values in Gen.ArrayOf(Gen.Frequency(
            (4, Gen.Choose(0, int.MaxValue).Select(x => x / (double)int.MaxValue)),
            (3, Gen.Choose(0, 6).Select(x => x / 8.0)),
            (1, Gen.Constant(0.0)),
            (1, Gen.Elements(double.Epsilon, 4.9e-320, 1e-300, 1.0))), count)
        select values;

    [Property(MaxTest = 200)]
    public Property Radix_rank_order_equals_the_comparison_sort_with_ties_by_id() =>
        Prop.ForAll(Probabilities.ToArbitrary(), RanksAlike);

    [Fact]
    public void Radix_rank_order_of_a_32000_softmax_equals_the_comparison_sort()
    {
        var random = new Random(7);
        var logits = Enumerable.Range(0, 32000).Select(_ => random.NextDouble() * 30 - 15).ToArray();
        var exp = logits.Select(l => Math.Exp((l - logits.Max()) / 0.8)).ToArray();
        var total = exp.Sum();
        var byId = exp.Select(e => e / total).ToArray();
        byId[5] = byId[17] = byId[31999]; // ties across the vocabulary


        Assert.True(RanksAlike(byId), "the radix rank order or its probability bits differ from the comparison sort's");
    }

    [Fact]
    public void Radix_rank_order_of_a_long_run_sharing_its_high_bits_orders_it_by_the_low_bits_then_id()
    {
        // 5,000 probabilities that differ only in their low 32 bits (and some exact ties): one run
        // the insertion sort gives up on, so the (low bits, id) pair sort orders it.
        var random = new Random(3);
        var byId = Enumerable.Range(0, 5000)
            .Select(_ => BitConverter.UInt64BitsToDouble(0x3F50_0000_0000_0000UL | (uint)random.Next(0, 2000) * 1_000_003UL))
            .ToArray();


        Assert.True(RanksAlike(byId), "the radix rank order or its probability bits differ from the comparison sort's");
    }

    [Fact]
    public void Radix_rank_order_refuses_scratch_of_the_wrong_length()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            RankOrder.Sort(new double[4], new int[4], new double[4], new uint[4], new uint[3], new int[4], new ulong[4], new int[RankOrder.CountsLength]));
        Assert.Contains("scratch", ex.Message);
    }

    /// <summary>The radix sort gives the comparison sort's ids, rank by rank, and the same probability bits.</summary>
    private static bool RanksAlike(double[] byId)
    {
        var (expectedP, expectedIds) = ComparisonRank(byId);
        var (actualP, actualIds) = RadixRank(byId);
        return expectedIds.SequenceEqual(actualIds)
            && expectedP.Select(BitConverter.DoubleToInt64Bits).SequenceEqual(actualP.Select(BitConverter.DoubleToInt64Bits));
    }

    /// <summary>The sampler's ranking before the radix sort: negated keys, Span.Sort, then ties put in id order.</summary>
    private static (double[] P, int[] Ids) ComparisonRank(double[] byId)
    {
        var keys = byId.Select(p => -p).ToArray();
        var ids = Enumerable.Range(0, byId.Length).ToArray();
        keys.AsSpan().Sort(ids.AsSpan());
        for (int start = 0; start < keys.Length;)
        {
            int end = start + 1;
            while (end < keys.Length && keys[end] == keys[start]) end++;
            if (end - start > 1) ids.AsSpan(start, end - start).Sort();
            start = end;
        }
        return (keys.Select(k => -k).ToArray(), ids);
    }

    private static (double[] P, int[] Ids) RadixRank(double[] byId)
    {
        int n = byId.Length;
        var p = (double[])byId.Clone();
        var ids = new int[n];
        RankOrder.Sort(p, ids, new double[n], new uint[n], new uint[n], new int[n], new ulong[n], new int[RankOrder.CountsLength]);
        return (p, ids);
    }
}
