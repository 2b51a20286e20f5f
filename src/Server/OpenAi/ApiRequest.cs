namespace Pipeline.Server.OpenAi;

/// <summary>
/// A /v1/completions or /v1/chat/completions request after parsing and type checks: the
/// generation it asks for plus what only HTTP knows (model name, streaming, usage, sample count).
/// Range checks of the sampling options are left to the host, which names the option when it
/// refuses.
/// </summary>
internal sealed record ApiRequest
{
    public string? Model { get; init; }
    /// <summary>The generation of sample 0 (its seed, when given, is the base seed).</summary>
    public required GenerationRequest Generation { get; init; }
    /// <summary>Every prompt of the request (a completion may send several); each is continued <see cref="SampleCount"/> times.</summary>
    public required IReadOnlyList<GenerationRequest> Prompts { get; init; }
    public bool Stream { get; init; }
    public bool IncludeUsage { get; init; }
    /// <summary>Parallel samples of the one prompt; sample i runs with seed + i.</summary>
    public int SampleCount { get; init; } = 1;

    public ulong? Seed => Generation.Seed;
    public bool Logprobs => Generation.Logprobs;

    /// <summary>Choices in the response: every prompt times its samples.</summary>
    public int ChoiceCount => Prompts.Count * SampleCount;

    /// <summary>
    /// Choice <paramref name="index"/>'s request (prompt index / n, as OpenAI orders choices): the base
    /// seed plus the choice index, so each choice is replayable alone.
    /// </summary>
    public GenerationRequest ToGeneration(ulong baseSeed, int index) => Prompts[index / SampleCount] with { Seed = unchecked(baseSeed + (ulong)index) };
}
