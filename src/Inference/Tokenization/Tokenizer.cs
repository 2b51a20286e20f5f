using System.Text;

namespace Pipeline.Inference.Tokenization;

/// <summary>
/// The llama2.c tokenizer of a model: text to token ids exactly as llama2.c's encode() gives
/// them, and ids back to text as its decode() does. Immutable; safe to share between threads.
/// </summary>
internal sealed class Tokenizer : ITokenizer
{
    // llama2.c ends a story at EOS (its generate loop also stops at BOS; the sample actor keeps that rule).
    private static readonly int[] LlamaEndIds = [TokenVocabulary.EosId];

    private readonly TokenVocabulary _vocabulary;
    private readonly ITextEncoder _encoder;

    private Tokenizer(TokenVocabulary vocabulary, ITextEncoder encoder)
    {
        _vocabulary = vocabulary;
        _encoder = encoder;
    }

    public int VocabSize => _vocabulary.Count;

    public int? BosId => TokenVocabulary.BosId;

    public IReadOnlyList<int> EndIds => LlamaEndIds;

    /// <summary>Reads a llama2.c tokenizer file such as models/stories260k/tok512.bin.</summary>
    public static Tokenizer Load(string tok512Path)
    {
        var vocabulary = TokenVocabulary.Read(tok512Path);
        // llama2.c's merges by a priority queue, checked id-for-id against Llama2cEncoder (the port
        // of run.c) by the reference and property tests.
        return new Tokenizer(vocabulary, new ScoredMergeEncoder(vocabulary));
    }

    /// <summary>
    /// Encodes as llama2.c's encode(text, bos, eos: 0): a dummy-prefix space before non-empty text,
    /// byte fallback for characters without a piece, then BPE merges by score.
    /// </summary>
    public IReadOnlyList<int> Encode(string text, bool addSpecial)
    {
        ArgumentNullException.ThrowIfNull(text);
        return _encoder.Encode(text, addSpecial);
    }

    /// <summary>
    /// Decodes ids as produced by generation, possibly starting with BOS. Control tokens (unk, BOS,
    /// EOS) give no text; the piece right after BOS loses its leading space; bytes of an
    /// unfinished character at the end come out as U+FFFD.
    /// </summary>
    public string Decode(IReadOnlyList<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>(ids.Count * 4);
        int previousId = TokenVocabulary.NoPreviousId;
        foreach (int id in ids)
        {
            bytes.AddRange(_vocabulary.DecodedBytes(previousId, id));
            previousId = id;
        }

        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }

    /// <summary>The bytes <paramref name="id"/> adds to the text when it follows <paramref name="previousId"/>.</summary>
    public ReadOnlySpan<byte> TokenBytes(int previousId, int id) => _vocabulary.DecodedBytes(previousId, id);

    /// <summary>The piece as llama2.c stores it (a real ' ' where SentencePiece writes '▁').</summary>
    public string PieceOf(int id)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(id);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(id, VocabSize);
        return _vocabulary.Piece(id);
    }

    /// <summary>unk, BOS and EOS are llama2.c's control tokens.</summary>
    public bool IsSpecial(int id) => TokenVocabulary.IsControl(id);
}
