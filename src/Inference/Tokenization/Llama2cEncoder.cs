using System.Text;

namespace Pipeline.Inference.Tokenization;

/// <summary>
/// A line-by-line port of llama2.c's encode() (run.c): the reference the stored prompt ids were
/// made with. Quadratic in the prompt length, which is fine for prompts.
/// </summary>
internal sealed class Llama2cEncoder : ITextEncoder
{
    private readonly TokenVocabulary _vocabulary;

    // Id of the piece " " that llama2.c prepends to non-empty text (SentencePiece's dummy prefix).
    private readonly int _dummyPrefixId;

    public Llama2cEncoder(TokenVocabulary vocabulary)
    {
        _vocabulary = vocabulary;
        if (!vocabulary.TryGetId(" ", out _dummyPrefixId))
        {
            throw new InvalidDataException("Tokenizer has no \" \" piece for the dummy prefix.");
        }
    }

    public IReadOnlyList<int> Encode(string text, bool addBos)
    {
        var tokens = new List<int>(text.Length + 2);
        if (addBos)
        {
            tokens.Add(TokenVocabulary.BosId);
        }

        if (text.Length == 0)
        {
            return tokens;
        }

        tokens.Add(_dummyPrefixId);

        // One token per code point when the vocabulary has it, else one per UTF-8 byte.
        Span<byte> utf8 = stackalloc byte[4];
        foreach (Rune rune in text.EnumerateRunes())
        {
            if (_vocabulary.TryGetId(rune.ToString(), out int id))
            {
                tokens.Add(id);
                continue;
            }

            int byteCount = rune.EncodeToUtf8(utf8);
            foreach (byte b in utf8[..byteCount])
            {
                tokens.Add(b + TokenVocabulary.FirstByteId);
            }
        }

        MergeBestPairsUntilNoneMerge(tokens);
        return tokens;
    }

    // llama2.c merges over the whole list, BOS included: each round it takes the adjacent pair
    // whose concatenated piece exists with the strictly highest score, so ties go to the left.
    private void MergeBestPairsUntilNoneMerge(List<int> tokens)
    {
        while (true)
        {
            float bestScore = -1e10f;
            int bestId = -1;
            int bestIndex = -1;
            for (int i = 0; i + 1 < tokens.Count; i++)
            {
                string merged = string.Concat(_vocabulary.Piece(tokens[i]), _vocabulary.Piece(tokens[i + 1]));
                if (_vocabulary.TryGetId(merged, out int id) && _vocabulary.Score(id) > bestScore)
                {
                    bestScore = _vocabulary.Score(id);
                    bestId = id;
                    bestIndex = i;
                }
            }

            if (bestIndex < 0)
            {
                return;
            }

            tokens[bestIndex] = bestId;
            tokens.RemoveAt(bestIndex + 1);
        }
    }
}
