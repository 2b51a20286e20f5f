namespace Pipeline;

/// <summary>
/// One streamed token: its id and the text it completes (possibly empty while a character or a
/// possible stop string is incomplete). A final event with <see cref="TokenId"/> -1 carries text
/// held back until the end.
/// </summary>
public sealed record TokenEvent(int TokenId, string Text, float? Logprob = null, IReadOnlyList<(int TokenId, float Logprob)>? TopLogprobs = null);
