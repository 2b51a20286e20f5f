namespace Pipeline.Inference.Tokenization;

/// <summary>One token matched as itself inside text (special or added tokens).</summary>
/// <param name="Content">The text that stands for the token.</param>
/// <param name="Id">The token's id.</param>
/// <param name="StripLeft">Whitespace just before the token is swallowed (Hugging Face <c>lstrip</c>).</param>
/// <param name="StripRight">Whitespace just after the token is swallowed (<c>rstrip</c>).</param>
internal sealed record AddedToken(string Content, int Id, bool StripLeft = false, bool StripRight = false);

/// <summary>
/// Cuts text into plain segments and added tokens, leftmost match first and the longest token at a
/// position (as Hugging Face's added-vocabulary matcher does). Immutable.
/// </summary>
internal sealed class AddedTokenSplitter
{
    // Candidates by first character, longest first.
    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens
            .Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>
    /// The pieces of <paramref name="text"/> in order: a segment of plain text (Id -1) or an added
    /// token (its id). Plain segments are never empty.
    /// </summary>
    public List<(string Text, int Id)> Split(string text)
    {
        var pieces = new List<(string, int)>();
        int plainStart = 0;
        int i = 0;
        while (i < text.Length)
        {
            var token = MatchAt(text, i);
            if (token is null)
            {
                i++;
                continue;
            }

            int plainEnd = i;
            if (token.StripLeft)
            {
                while (plainEnd > plainStart && char.IsWhiteSpace(text[plainEnd - 1]))
                {
                    plainEnd--;
                }
            }

            if (plainEnd > plainStart)
            {
                pieces.Add((text[plainStart..plainEnd], -1));
            }

            pieces.Add((token.Content, token.Id));
            i += token.Content.Length;
            if (token.StripRight)
            {
                while (i < text.Length && char.IsWhiteSpace(text[i]))
                {
                    i++;
                }
            }

            plainStart = i;
        }

        if (plainStart < text.Length)
        {
            pieces.Add((text[plainStart..], -1));
        }

        return pieces;
    }

    private AddedToken? MatchAt(string text, int position)
    {
        if (!_byFirstChar.TryGetValue(text[position], out var candidates))
        {
            return null;
        }

        foreach (var token in candidates)
        {
            if (text.AsSpan(position).StartsWith(token.Content, StringComparison.Ordinal))
            {
                return token;
            }
        }

        return null;
    }
}
