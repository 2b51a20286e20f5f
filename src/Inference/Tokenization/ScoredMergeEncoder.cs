using Pipeline.Inference.Tokenization.Bpe;

namespace Pipeline.Inference.Tokenization;

/// <summary>
/// llama2.c's encode() (a dummy-prefix space, code points or their UTF-8 bytes, then merges of the
/// adjacent pair with the highest score, the leftmost among equal scores) in O(n log n) with a
/// priority queue (<see cref="ScoredMerges"/>, the engine of GGUF's SentencePiece vocabularies),
/// where <see cref="Llama2cEncoder"/>, the line-by-line port, rescans every pair per merge.
/// </summary>
/// <remarks>
/// It replaced ML.Tokenizers' SentencePiece BPE in production: that library breaks ties between
/// equal scores differently (" \ooo" gave "o", "oo" where llama2.c and SentencePiece give "oo", "o").
/// </remarks>
internal sealed class ScoredMergeEncoder : ITextEncoder
{
    private readonly ScoredMerges _merges;

    public ScoredMergeEncoder(TokenVocabulary vocabulary)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        var idOfPiece = new Dictionary<string, int>(vocabulary.Count, StringComparer.Ordinal);
        var scores = new float[vocabulary.Count];
        for (int id = 0; id < vocabulary.Count; id++)
        {
            scores[id] = vocabulary.Score(id);
            // The vocabulary's own lookup decides which id a duplicated piece has, as llama2.c's does.
            if (vocabulary.TryGetId(vocabulary.Piece(id), out int canonical)) idOfPiece[vocabulary.Piece(id)] = canonical;
        }
        var byteIds = new int[256];
        for (int b = 0; b < 256; b++) byteIds[b] = TokenVocabulary.FirstByteId + b;
        _merges = new ScoredMerges(idOfPiece, scores, byteIds);
    }

    public IReadOnlyList<int> Encode(string text, bool addBos)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length + 2);
        if (addBos) ids.Add(TokenVocabulary.BosId);
        // llama2.c prepends the piece " " to non-empty text; its pieces hold real spaces.
        if (text.Length > 0) _merges.Encode(" " + text, ids);
        return ids;
    }
}
