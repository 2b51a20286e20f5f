using Pipeline.Inference.Sampling;

namespace Pipeline;

/// <summary>
/// One generation: a prompt and how to continue it. The one request type of the product: the
/// CLI, batch mode, the HTTP server, the IChatClient and the bench all build this, and the actors
/// carry it unchanged.
/// </summary>
public sealed record GenerationRequest
{
    /// <summary>Tokens generated when the caller names no limit (CLI, server, IChatClient alike).</summary>
    public const int DefaultMaxTokens = 256;

    /// <summary>The most alternatives per token a request may ask log-probabilities for.</summary>
    public const int MaxTopLogprobs = 20;

    /// <summary>The text to continue (encoded with the tokenizer's special tokens). Ignored when <see cref="PromptIds"/> is set.</summary>
    public string? Prompt { get; init; }

    /// <summary>Token ids to continue, used as given (the tokenizer adds nothing, BOS included if wanted).</summary>
    public IReadOnlyList<int>? PromptIds { get; init; }

    /// <summary>
    /// Whether encoding <see cref="Prompt"/> adds the tokenizer's special tokens (BOS for Llama 2
    /// style tokenizers). False for a prompt that spells them itself, such as a rendered chat template.
    /// </summary>
    public bool AddSpecialTokens { get; init; } = true;

    public int MaxTokens { get; init; } = DefaultMaxTokens;

    /// <summary>
    /// When true, a prompt whose length plus <see cref="MaxTokens"/> exceeds the model's context is
    /// refused (the server sets it when the client names max_tokens, as OpenAI does); when false,
    /// generation simply stops at the full context.
    /// </summary>
    public bool MaxTokensMustFit { get; init; }

    /// <summary>When absent, the host picks one and reports it in the result so the run can be replayed.</summary>
    public ulong? Seed { get; init; }

    /// <summary>How logits become a token; the default samples from the plain softmax (temperature 1).</summary>
    public SamplingOptions Sampling { get; init; } = SamplingOptions.Default;

    /// <summary>
    /// When true, the tokenizer's end ids (and BOS) do not end the generation: they are emitted like
    /// any token and it runs on to <see cref="MaxTokens"/>, a stop string or the context. For fixed-length
    /// load (benchmarks that compare with llama.cpp's <c>llama-batched-bench</c>, which never stops at
    /// an end token); the server takes it as <c>ignore_eos</c>, as vLLM and llama.cpp's server do.
    /// </summary>
    public bool IgnoreEos { get; init; }

    /// <summary>Generation ends when the text contains one of these; the text stops before it.</summary>
    public IReadOnlyList<string> Stop { get; init; } = [];

    /// <summary>Report each chosen token's log-probability (implied by <see cref="TopLogprobs"/> &gt; 0).</summary>
    public bool Logprobs { get; init; }

    /// <summary>Alternatives reported beside each chosen token, 0..<see cref="MaxTopLogprobs"/>.</summary>
    public int TopLogprobs { get; init; }

    /// <summary>Keep the raw logits each token was sampled from in the result.</summary>
    public bool CaptureLogits { get; init; }

    /// <summary>Whether tokens carry log-probabilities.</summary>
    internal bool WantsLogprobs => Logprobs || TopLogprobs > 0;
}
