using System.Text;
using FsCheck;
using FsCheck.Xunit;
using Pipeline.Inference.Tokenization;
using Pipeline.Inference.Tokenization.Gguf;
using Pipeline.Inference.Tokenization.HuggingFace;

namespace Pipeline.Properties;

/// <summary>
/// The prompt-length bound (a text prompt refused before it is tokenized) never refuses a text
/// that fits: a context of exactly the text's own token count lets it through, for printable text
/// and for the densest text there is, whole vocabulary pieces (special tokens spelled out)
/// repeated. Over every tokenizer source in tests/fixtures. Failures print a replay seed.
/// </summary>
[Properties(Arbitrary = [typeof(TextGenerators)], MaxTest = 200)]
public sealed class PromptLengthBoundProperties
{
    private static readonly Lazy<(string Name, ITokenizer Tokenizer, PromptLengthBound Bound)[]> Tokenizers = new(() =>
        new (string, ITokenizer)[]
        {
            ("llama2.c tok512", Tokenizer.Load(Path.Combine(RepoPaths.ModelDir, "tok512.bin"))),
            ("llama3 tokenizer.json", HuggingFaceTokenizer.LoadFolder(Fixture("tokenizers", "llama3"))),
            ("qwen3 tokenizer.json", HuggingFaceTokenizer.LoadFolder(Fixture("tokenizers", "qwen3"))),
            ("spm-bpe-32k tokenizer.json", HuggingFaceTokenizer.LoadFolder(Fixture("tokenizers", "spm-bpe-32k"))),
            ("gguf llama-spm", GgufTokenizer.Load(Fixture("gguf-vocab", "ggml-vocab-llama-spm.gguf"))),
            ("gguf phi-3", GgufTokenizer.Load(Fixture("gguf-vocab", "ggml-vocab-phi-3.gguf"))),
            ("gguf gpt-2", GgufTokenizer.Load(Fixture("gguf-vocab", "ggml-vocab-gpt-2.gguf"))),
        }.Select(t => (t.Item1, t.Item2, new PromptLengthBound(t.Item2))).ToArray());

    [Property]
    public void A_printable_text_is_never_refused_by_a_context_of_its_own_token_count(PrintableText text)
    {
        foreach (var (name, tokenizer, bound) in Tokenizers.Value) AssertFits(name, tokenizer, bound, text.Value);
    }

    [Property]
    public void A_text_of_whole_vocabulary_pieces_is_never_refused_by_a_context_of_its_own_token_count(NonEmptyArray<PositiveInt> picks, PositiveInt repeats)
    {
        foreach (var (name, tokenizer, bound) in Tokenizers.Value)
        {
            var pieces = picks.Get.Take(12).Select(p => Spelled(tokenizer, p.Get % tokenizer.VocabSize));
            string text = string.Concat(Enumerable.Repeat(string.Concat(pieces), 1 + repeats.Get % 50));
            AssertFits(name, tokenizer, bound, text);
        }
    }

    /// <summary>A token as text: a special token's spelling (it is matched as itself), else its bytes.</summary>
    private static string Spelled(ITokenizer tokenizer, int id) =>
        tokenizer.IsSpecial(id) ? tokenizer.PieceOf(id) : Encoding.UTF8.GetString(tokenizer.TokenBytes(-1, id));

    private static void AssertFits(string name, ITokenizer tokenizer, PromptLengthBound bound, string text)
    {
        int tokens = Math.Max(1, tokenizer.Encode(text, addSpecial: false).Count);
        Assert.False(bound.CannotFit(text, tokens, out long bytes),
            $"{name}: {bytes} bytes encode to {tokens} tokens, but the bound ({bound.MaxBytesPerToken} bytes a token) refuses them for a context of {tokens}");
    }

    private static string Fixture(string folder, string name) => Path.Combine(RepoPaths.Root, "tests", "fixtures", folder, name);
}
