namespace Pipeline;

/// <summary>
/// One streamed token: its id, the text it completes (possibly empty while a character or a
/// possible stop string is incomplete) and, when asked for, its log-probability with the most
/// likely alternatives, each spelled as it follows the token before. A final event with
/// <see cref="TokenId"/> -1 carries text held back until the end. Consumers never spell tokens
/// again: everything they show is here.
/// </summary>
public sealed record TokenEvent(int TokenId, string Text, TokenLogprob? Logprob = null, IReadOnlyList<TokenLogprob>? TopLogprobs = null);

/// <summary>
/// A token's log-probability under the model's own distribution (softmax of the raw logits), with
/// the token spelled as text and as its UTF-8 bytes (a piece may be part of a character, so its
/// text alone can be lossy).
/// </summary>
public sealed record TokenLogprob(int TokenId, string Token, IReadOnlyList<byte> Bytes, float Logprob);
