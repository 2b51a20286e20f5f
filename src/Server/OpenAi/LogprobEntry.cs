using System.Text;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Server.OpenAi;

/// <summary>One generated token's log-probability with its alternatives, spelled as token text and bytes.</summary>
internal sealed record LogprobEntry(string Token, byte[] Bytes, float Logprob, IReadOnlyList<(string Token, byte[] Bytes, float Logprob)> Top)
{
    /// <summary>
    /// Spells the token as its piece follows <paramref name="previousId"/> (after BOS llama2.c
    /// drops a leading space). A piece may be part of a UTF-8 character: its string is then
    /// lossy, which is why OpenAI also reports the bytes.
    /// </summary>
    public static LogprobEntry? From(TokenEvent token, int previousId, Tokenizer tokenizer)
    {
        if (token.TokenId < 0 || token.Logprob is not { } logprob) return null;
        var (text, bytes) = Spell(tokenizer, previousId, token.TokenId);
        var top = (token.TopLogprobs ?? []).Select(t =>
        {
            var (s, b) = Spell(tokenizer, previousId, t.TokenId);
            return (s, b, t.Logprob);
        }).ToArray();
        return new LogprobEntry(text, bytes, logprob, top);
    }

    private static (string Text, byte[] Bytes) Spell(Tokenizer tokenizer, int previousId, int id)
    {
        var bytes = tokenizer.TokenBytes(previousId, id).ToArray();
        return (Encoding.UTF8.GetString(bytes), bytes);
    }
}
