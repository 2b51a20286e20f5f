namespace Pipeline.Server.OpenAi;

/// <summary>
/// One generated token's log-probability with its alternatives, as the response shapes write
/// them. Spelled by the detokenize actor (text and bytes, after the token before); the server
/// only copies.
/// </summary>
internal sealed record LogprobEntry(TokenLogprob Chosen, IReadOnlyList<TokenLogprob> Top)
{
    public string Token => Chosen.Token;
    public IReadOnlyList<byte> Bytes => Chosen.Bytes;
    public float Logprob => Chosen.Logprob;

    /// <summary>The entry of a token event, or null for events without a token or log-probability.</summary>
    public static LogprobEntry? From(TokenEvent token) =>
        token.TokenId >= 0 && token.Logprob is { } chosen ? new LogprobEntry(chosen, token.TopLogprobs ?? []) : null;
}
