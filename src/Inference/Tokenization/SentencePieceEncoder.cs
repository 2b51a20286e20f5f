using Microsoft.ML.Tokenizers;

namespace Pipeline.Inference.Tokenization;

/// <summary>
/// Encodes through Microsoft.ML.Tokenizers' SentencePiece BPE (LlamaTokenizer), fed a model
/// built in memory from the llama2.c vocabulary.
/// </summary>
internal sealed class SentencePieceEncoder : ITextEncoder
{
    private readonly LlamaTokenizer _tokenizer;

    private SentencePieceEncoder(LlamaTokenizer tokenizer) => _tokenizer = tokenizer;

    /// <param name="markWhitespace">See <see cref="SentencePieceModelWriter.Write"/>; false in production.</param>
    public static SentencePieceEncoder Create(TokenVocabulary vocabulary, bool markWhitespace = false)
    {
        using var model = new MemoryStream(SentencePieceModelWriter.Write(vocabulary, markWhitespace));
        return new SentencePieceEncoder(LlamaTokenizer.Create(model, addBeginOfSentence: false, addEndOfSentence: false));
    }

    public IReadOnlyList<int> Encode(string text, bool addBos)
    {
        // BOS is added here, not by ML.Tokenizers: it returns no ids at all for empty text,
        // where llama2.c still gives [BOS].
        var ids = new List<int>(text.Length + 2);
        if (addBos)
        {
            ids.Add(TokenVocabulary.BosId);
        }

        ids.AddRange(_tokenizer.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false));
        return ids;
    }
}
