using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Pipeline.Inference.Sampling;

namespace Pipeline.Properties;

public sealed class SamplingOptionsTests
{
    public static TheoryData<string, SamplingOptions, string> InvalidOptions => new()
    {
        { "temperature", new SamplingOptions { Temperature = -0.1f }, "-0.1" },
        { "temperature", new SamplingOptions { Temperature = float.NaN }, "NaN" },
        { "temperature", new SamplingOptions { Temperature = float.PositiveInfinity }, "Infinity" },
        { "top_p", new SamplingOptions { TopP = 0f }, "0" },
        { "top_p", new SamplingOptions { TopP = -0.5f }, "-0.5" },
        { "top_p", new SamplingOptions { TopP = 1.5f }, "1.5" },
        { "top_p", new SamplingOptions { TopP = float.NaN }, "NaN" },
        { "top_k", new SamplingOptions { TopK = -1 }, "-1" },
        { "min_p", new SamplingOptions { MinP = 1f }, "1" },
        { "min_p", new SamplingOptions { MinP = -0.01f }, "-0.01" },
        { "min_p", new SamplingOptions { MinP = float.NaN }, "NaN" },
        { "repetition_penalty", new SamplingOptions { RepetitionPenalty = 0f }, "0" },
        { "repetition_penalty", new SamplingOptions { RepetitionPenalty = -1f }, "-1" },
        { "repetition_penalty", new SamplingOptions { RepetitionPenalty = float.NaN }, "NaN" },
        { "repetition_penalty", new SamplingOptions { RepetitionPenalty = float.PositiveInfinity }, "Infinity" },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void Validate_invalid_value_throws_naming_the_option_and_the_value(string option, SamplingOptions options, string value)
    {
        var error = Assert.Throws<InvalidRequestException>(() => options.Validate());

        Assert.Equal(option, error.ParamName);
        Assert.Contains(option, error.Message);
        Assert.Contains(value, error.Message);
    }

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void Sample_invalid_options_throws_before_sampling(string option, SamplingOptions options, string value)
    {
        _ = value;
        var error = Assert.Throws<InvalidRequestException>(() => Sampler.Sample([0f, 1f], options, 0, 0, []));

        Assert.Equal(option, error.ParamName);
    }

    [Fact]
    public void Validate_defaults_are_valid_and_mean_plain_softmax_sampling()
    {
        var defaults = new SamplingOptions().Validate();

        Assert.Equal((1f, 1f, 0, 0f, 1f), (defaults.Temperature, defaults.TopP, defaults.TopK, defaults.MinP, defaults.RepetitionPenalty));
    }

    [Property]
    public Property Validate_generated_valid_options_returns_the_same_options() =>
        Prop.ForAll(SamplingGenerators.Options.ToArbitrary(), options => ReferenceEquals(options, options.Validate()));

    [Fact]
    public void InvalidRequestException_is_an_argument_exception()
    {
        Assert.IsAssignableFrom<ArgumentException>(new InvalidRequestException("top_k", "bad"));
    }
}
