using Pipeline.Inference.Runtime;

namespace Pipeline.Integration;

/// <summary>How a KV budget is written (<c>--kv-budget</c>) and how large it is by default.</summary>
public sealed class KvBudgetSizingTests
{
    private const long Machine = 16L << 30;

    [Theory]
    [InlineData("123456", 123_456L)]
    [InlineData("512MB", 512_000_000L)]
    [InlineData("512 MB", 512_000_000L)]
    [InlineData("2GiB", 2L << 30)]
    [InlineData("1.5GB", 1_500_000_000L)]
    [InlineData("64kib", 64L << 10)]
    [InlineData("0.25", Machine / 4)]
    [InlineData("25%", Machine / 4)]
    [InlineData("1.0", Machine)]
    public void A_budget_is_bytes_a_size_with_a_unit_or_a_fraction_of_the_machine(string text, long bytes)
    {
        Assert.Equal(bytes, KvBudgetSizing.Parse(text, Machine));
    }

    [Theory]
    [InlineData("banana")]
    [InlineData("")]
    [InlineData("-5")]
    [InlineData("0")]
    [InlineData("0.0")]
    [InlineData("1.5")]
    [InlineData("150%")]
    [InlineData("12 parsecs")]
    [InlineData("0.5B")]
    public void A_budget_that_is_not_one_is_an_error_saying_what_a_budget_may_be(string text)
    {
        var error = Assert.Throws<FormatException>(() => KvBudgetSizing.Parse(text, Machine));
        Assert.Contains($"'{text}' is not a KV budget", error.Message, StringComparison.Ordinal);
        Assert.Contains("512MB", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_default_is_half_the_memory_beside_the_weights_but_never_less_than_one_full_context_sequence()
    {
        var config = SharedModel.Instance.Decoder.Config;
        long oneSequence = config.SeqLen * KvCache.BytesPerPosition(config);
        Assert.Equal((Machine - (1L << 30)) / 2, KvBudgetSizing.Default(config, weightBytes: 1L << 30, Machine));
        Assert.Equal(oneSequence, KvBudgetSizing.Default(config, weightBytes: Machine, Machine));
        Assert.Equal(oneSequence, KvBudgetSizing.Default(config, weightBytes: 2 * Machine, Machine));
    }

    [Fact]
    public async Task A_host_without_a_budget_gets_the_default_for_its_machine_and_model()
    {
        var model = SharedModel.Instance;
        await using var host = PipelineHost.Start(model);
        Assert.Equal(KvBudgetSizing.Default(model.Decoder.Config, model.Decoder.WeightBytes, KvBudgetSizing.MachineBytes()), host.KvBudget.Bytes);
        Assert.True(model.Decoder.WeightBytes > 0);
    }
}
