using System.Globalization;

namespace Pipeline.Inference.Sampling;

/// <summary>
/// How to turn logits into a token. The defaults sample from the plain softmax. Limits on length, stop
/// sequences and the seed belong to the request, not here.
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>Sampling from the plain softmax (temperature 1, every filter off).</summary>
    public static readonly SamplingOptions Default = new();

    /// <summary>Always the most likely token (temperature 0).</summary>
    public static readonly SamplingOptions Greedy = new() { Temperature = 0f };

    /// <summary>Divides the logits before the softmax; 0 means greedy (argmax). Must be finite and >= 0.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Nucleus sampling: keep the smallest most-likely prefix whose mass reaches this. In (0, 1]; 1 is off.</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Keep only the k most likely tokens; 0 is off, 1 is greedy. Must be >= 0.</summary>
    public int TopK { get; init; }

    /// <summary>Drop tokens less likely than this fraction of the most likely one. In [0, 1); 0 is off.</summary>
    public float MinP { get; init; }

    /// <summary>CTRL-style penalty on tokens already in the history; 1 is off. Must be finite and > 0.</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>The bounds of <see cref="RepetitionPenalty"/>: a logit scaled by at most 100 stays finite.</summary>
    public const float MinRepetitionPenalty = 0.01f, MaxRepetitionPenalty = 100f;

    /// <summary>True when the result is the argmax and no random draw is used.</summary>
    public bool IsGreedy => Temperature == 0f || TopK == 1;

    /// <summary>Returns these options unchanged, or throws naming the first option out of range.</summary>
    /// <exception cref="InvalidRequestException">An option is out of range or NaN.</exception>
    public SamplingOptions Validate()
    {
        // Written as "!(in range)" so that NaN, which fails every comparison, is rejected too.
        if (!(Temperature >= 0f && float.IsFinite(Temperature)))
            throw Invalid("temperature", Temperature, "must be a finite number >= 0 (0 means greedy)");
        if (!(TopP > 0f && TopP <= 1f))
            throw Invalid("top_p", TopP, "must be in (0, 1]");
        if (TopK < 0)
            throw Invalid("top_k", TopK, "must be >= 0 (0 means off)");
        if (!(MinP >= 0f && MinP < 1f))
            throw Invalid("min_p", MinP, "must be in [0, 1)");
        // Bounded both ways: a logit divided by a tiny penalty (1e-38) overflows to +infinity.
        if (!(RepetitionPenalty >= MinRepetitionPenalty && RepetitionPenalty <= MaxRepetitionPenalty))
            throw Invalid("repetition_penalty", RepetitionPenalty, $"must be between {MinRepetitionPenalty} and {MaxRepetitionPenalty} (1 means off)");
        return this;
    }

    private static InvalidRequestException Invalid<T>(string option, T value, string rule)
        where T : IFormattable =>
        new(option, $"{option} {rule}; got {value.ToString(null, CultureInfo.InvariantCulture)}.");
}
