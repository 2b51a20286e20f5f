using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Pipeline.Inference.Sampling;

namespace Pipeline.Properties;

public sealed class CounterRandomTests
{
    // Published known answers for Philox4x32 from Random123's tests/kat_vectors (D. E. Shaw Research),
    // columns: counter (4 words), key (2 words), expected output (4 words). The 7-round lines pin the
    // round function and key schedule independently of the round count we use.
    public static TheoryData<int, uint[], uint[], uint[]> Random123KnownAnswers => new()
    {
        { 7, [0x00000000, 0x00000000, 0x00000000, 0x00000000], [0x00000000, 0x00000000], [0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48] },
        { 7, [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662] },
        { 7, [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a] },
        { 10, [0x00000000, 0x00000000, 0x00000000, 0x00000000], [0x00000000, 0x00000000], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8] },
        { 10, [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd] },
        { 10, [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1] },
    };

    [Theory]
    [MemberData(nameof(Random123KnownAnswers))]
    public void Philox4x32_random123_known_answer_vector_is_reproduced_exactly(int rounds, uint[] counter, uint[] key, uint[] expected)
    {
        var block = Philox4x32.Block(new(counter[0], counter[1], counter[2], counter[3]), key[0], key[1], rounds);

        Assert.Equal(expected, new[] { block.X0, block.X1, block.X2, block.X3 });
    }

    [Fact]
    public void NextDouble_seed_zero_draw_zero_is_the_top_53_bits_of_the_zero_known_answer_block()
    {
        // Counter 0, key 0 is the first Philox4x32-10 known answer: X0 = 6627e8d5, X1 = e169c58d.
        const ulong word = 0x6627e8d5_e169c58dUL;

        Assert.Equal((word >> 11) * (1.0 / (1UL << 53)), CounterRandom.NextDouble(0, 0));
        Assert.Equal((0x6627e8d5u >> 8) * (1.0f / (1 << 24)), CounterRandom.NextSingle(0, 0));
    }

    [Fact]
    public void NextDouble_seed_and_index_are_the_key_and_counter_words()
    {
        // The seed's low half is key word 0, the draw index's low half is counter word 0; pinned so
        // another implementation (or a GPU kernel) can replay a request's draws bit for bit.
        var seed = 0x299f31d0_a4093822UL;
        var drawIndex = unchecked((long)0x85a308d3_243f6a88UL) & long.MaxValue;
        var block = Philox4x32.Block(new((uint)drawIndex, (uint)(drawIndex >> 32), 0, 0), (uint)seed, (uint)(seed >> 32), 10);
        var word = ((ulong)block.X0 << 32) | block.X1;

        Assert.Equal((word >> 11) * (1.0 / (1UL << 53)), CounterRandom.NextDouble(seed, drawIndex));
    }

    [Property]
    public Property NextDouble_any_seed_and_index_is_pure_and_in_unit_interval() =>
        Prop.ForAll(SamplingGenerators.Seed.ToArbitrary(), SamplingGenerators.DrawIndex.ToArbitrary(), (seed, index) =>
        {
            var first = CounterRandom.NextDouble(seed, index);
            var single = CounterRandom.NextSingle(seed, index);
            return first == CounterRandom.NextDouble(seed, index) && first is >= 0.0 and < 1.0 && single is >= 0f and < 1f;
        });

    [Property(MaxTest = 50)]
    public Property NextDouble_consecutive_indices_look_uniform_and_uncorrelated() =>
        Prop.ForAll(SamplingGenerators.Seed.ToArbitrary(), seed =>
        {
            // 4096 draws: the mean's standard error is 0.0045 and the lag-1 correlation's is 0.016, so the
            // bounds below sit more than 6 standard errors out; a false alarm is practically impossible.
            const int count = 4096;
            var draws = Enumerable.Range(0, count).Select(i => CounterRandom.NextDouble(seed, i)).ToArray();
            var mean = draws.Average();
            var variance = draws.Select(d => (d - mean) * (d - mean)).Sum() / count;
            var lagCovariance = draws.Zip(draws.Skip(1), (a, b) => (a - mean) * (b - mean)).Sum() / (count - 1);
            return Math.Abs(mean - 0.5) < 0.03 && Math.Abs(lagCovariance / variance) < 0.1
                && draws.Distinct().Count() == count;
        });

    [Fact]
    public void NewSeed_called_twice_gives_different_seeds()
    {
        // 64 random bits: a collision here has probability 2^-64.
        Assert.NotEqual(SeedSource.NewSeed(), SeedSource.NewSeed());
    }
}
