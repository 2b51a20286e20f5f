namespace Pipeline.Actors;

/// <summary>
/// One generated token and the text it completes. <see cref="TokenId"/> is -1 for the text
/// released at the end of a request that was held back while it might have begun a stop string.
/// </summary>
public sealed record TokenOutput(int TokenId, string Text, TokenLogprob? Logprob);

/// <summary>The log-probability of the chosen token under the model's distribution, and the most likely alternatives.</summary>
public sealed record TokenLogprob(int TokenId, float Logprob, IReadOnlyList<(int TokenId, float Logprob)> Top);
