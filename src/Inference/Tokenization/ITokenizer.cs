namespace Pipeline.Inference.Tokenization;

/// <summary>
/// What the pipeline needs of any tokenizer (llama2.c files, Hugging Face <c>tokenizer.json</c>,
/// GGUF metadata): text to ids, ids to bytes one token at a time (the detokenize actor streams
/// UTF-8 safely from these), and the special ids that start and end a sequence. Implementations
/// are immutable and safe to share between threads.
/// </summary>
public interface ITokenizer
{
    /// <summary>Number of ids the tokenizer can produce (the model's vocabulary may be larger).</summary>
    int VocabSize { get; }

    /// <summary>The id the tokenizer puts first when special tokens are added, or null when it adds none.</summary>
    int? BosId { get; }

    /// <summary>Every id that ends generation (the tokenizer's eos and the model's configured end ids).</summary>
    IReadOnlyList<int> EndIds { get; }

    /// <summary>
    /// Encodes <paramref name="text"/>; special and added tokens written in the text are matched
    /// as themselves. With <paramref name="addSpecial"/> the tokenizer's own post-processing adds
    /// its special tokens (BOS for Llama 2 style tokenizers, nothing for Llama 3 or Qwen).
    /// </summary>
    IReadOnlyList<int> Encode(string text, bool addSpecial);

    /// <summary>Decodes ids to text, special tokens omitted; an unfinished UTF-8 tail becomes U+FFFD.</summary>
    string Decode(IReadOnlyList<int> ids);

    /// <summary>
    /// The bytes <paramref name="id"/> adds to the decoded text when it follows
    /// <paramref name="previousId"/> (-1 at the start of a text). Concatenating these for a sequence
    /// gives the UTF-8 of <see cref="Decode"/> for it (before U+FFFD replacement). Special tokens
    /// give no bytes.
    /// </summary>
    ReadOnlySpan<byte> TokenBytes(int previousId, int id);

    /// <summary>The token's piece as the vocabulary spells it (for inspection and logprob lists).</summary>
    string PieceOf(int id);

    /// <summary>Whether <paramref name="id"/> is a special (control) token.</summary>
    bool IsSpecial(int id);
}
