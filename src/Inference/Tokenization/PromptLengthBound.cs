using System.Text;

namespace Pipeline.Inference.Tokenization;

/// <summary>
/// The longest text prompt, in UTF-8 bytes, whose tokens could still fit a context. A prompt
/// longer than that is refused without being tokenized: a 10 MB prompt costs a length check,
/// not an encode. Computed once per tokenizer from its vocabulary.
/// </summary>
/// <remarks>
/// Why it holds: the tokens of an encoded text stand for pieces of it that together are the whole
/// text (byte fallback and byte-level alphabets leave no byte uncovered), so a text of B bytes
/// takes at least B / M tokens, M being the most bytes one token stands for. M is the larger of a
/// token's decoded bytes and its piece as spelled: a special token written in the text decodes to
/// nothing but consumes its spelling, and '▁' or a byte-level alphabet spells one byte in two or
/// three. Normalizers may shrink text before it is split: NFC composes at most three UTF-8 bytes
/// into one (Hangul jamo L V T, 9 bytes, into a syllable of 3), lowercasing at most three into
/// one (the Kelvin sign); <see cref="Slack"/> covers both. Not covered: text that is deleted
/// outright (a Strip or a Replace by nothing in the normalizer, whitespace an added token's
/// lstrip/rstrip swallows) and runs of unknown characters fused into one token by a model without
/// byte fallback. A prompt padded with more than the bound of such text is refused though its
/// tokens might fit; the tokenizers of Llama 2 and 3, Mistral and Qwen delete nothing that way.
/// </remarks>
internal sealed class PromptLengthBound
{
    /// <summary>How much normalization may shrink a text (three to one), with room to spare.</summary>
    public const int Slack = 4;

    public PromptLengthBound(ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        int most = 1;
        for (int id = 0; id < tokenizer.VocabSize; id++)
            most = Math.Max(most, Math.Max(tokenizer.TokenBytes(-1, id).Length, Encoding.UTF8.GetByteCount(tokenizer.PieceOf(id))));
        MaxBytesPerToken = most;
    }

    /// <summary>The most bytes of text one token of this vocabulary stands for.</summary>
    public int MaxBytesPerToken { get; }

    /// <summary>UTF-8 bytes of text that may still fit <paramref name="contextLength"/> tokens; more cannot.</summary>
    public long MaxPromptBytes(int contextLength) => (long)contextLength * MaxBytesPerToken * Slack;

    /// <summary>
    /// True when <paramref name="text"/> is too long for <paramref name="contextLength"/> tokens
    /// whatever it encodes to; <paramref name="bytes"/> is then a lower bound of its UTF-8 length
    /// (its exact length unless that would mean reading the whole of a huge text).
    /// </summary>
    public bool CannotFit(string text, int contextLength, out long bytes)
    {
        ArgumentNullException.ThrowIfNull(text);
        long limit = MaxPromptBytes(contextLength);
        // A UTF-16 unit is at least one UTF-8 byte: a text with more units than the limit is over it
        // without counting (and its exact length would mean reading all of it).
        if (text.Length > limit)
        {
            bytes = text.Length;
            return true;
        }
        bytes = Encoding.UTF8.GetByteCount(text);
        return bytes > limit;
    }
}
