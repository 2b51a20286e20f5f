using Pipeline.Inference.Tokenization.Bpe;

namespace Pipeline.Inference.Tokenization.Gguf;

/// <summary>
/// The regex pre-tokenizers llama.cpp applies to <c>gpt2</c>-model vocabularies, chosen by
/// <c>tokenizer.ggml.pre</c> (llama-vocab.cpp, llm_tokenizer_bpe). Each regex in turn splits
/// every piece the previous one left, keeping both matches and the text between them.
/// </summary>
internal static class GgufPreTokenizers
{
    private const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private const string Llama3 =
        @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private const string Qwen2 =
        @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The regexes for <paramref name="pre"/> and whether a whole word found in the vocabulary skips merging (Llama 3's ignore_merges).</summary>
    public static (string[] Patterns, bool IgnoreMerges, bool AddsBos) For(string pre, string file) => pre switch
    {
        // llama.cpp's DEFAULT pre-tokenizer for BPE vocabularies without a known pre type.
        "default" => ([@"[\p{P}\$\+<=>\^~\|]+", @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)", @"\p{N}+", "[0-9][0-9][0-9]"], false, false),
        "gpt-2" or "gpt2" or "phi-2" or "jina-es" or "jina-de" => ([Gpt2], false, false),
        "llama3" or "llama-v3" or "llama-bpe" or "smaug-bpe" or "falcon3" => ([Llama3], true, true),
        "qwen2" or "deepseek-r1-qwen" or "stablelm2" => ([Qwen2], false, false),
        "starcoder" or "refact" or "command-r" or "smollm" or "codeshell" => ([@"\p{N}", Gpt2], false, false),
        _ => throw new NotSupportedException(
            $"GGUF file '{file}': tokenizer.ggml.pre \"{pre}\" is not a pre-tokenizer this reader knows " +
            "(known: default, gpt-2, llama3/llama-bpe, qwen2, starcoder/smollm and their aliases)."),
    };

    /// <summary>Splits <paramref name="text"/> by each regex in turn, as llama.cpp's unicode_regex_split does.</summary>
    public static List<string> Split(string text, CodePointRegex[] regexes)
    {
        var pieces = new List<string> { text };
        foreach (var regex in regexes)
        {
            var next = new List<string>(pieces.Count * 2);
            foreach (string piece in pieces)
            {
                foreach (var (start, length) in Splitting.Split(piece.Length, regex.Matches(piece), SplitBehavior.Isolated, invert: false))
                {
                    next.Add(piece.Substring(start, length));
                }
            }

            pieces = next;
        }

        return pieces;
    }
}
