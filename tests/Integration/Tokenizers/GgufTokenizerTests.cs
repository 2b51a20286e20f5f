using System.Text;
using System.Text.Json;
using Pipeline.Inference.Models.Gguf;
using Pipeline.Inference.Tokenization;
using Pipeline.Inference.Tokenization.Gguf;

namespace Pipeline.Integration.Tokenizers;

/// <summary>
/// Tokenizers read from GGUF metadata against llama.cpp's own test vectors
/// (tests/fixtures/gguf-vocab) and against the llama2.c tokenizer of stories260K.
/// </summary>
public sealed class GgufTokenizerTests
{
    private static readonly Lazy<GgufTokenizer> Stories = new(() => GgufTokenizer.Load(TokenizerFixtures.StoriesGguf));
    private static readonly Lazy<Tokenizer> Llama2c = new(() => Tokenizer.Load(Path.Combine(RepoPaths.ModelDir, "tok512.bin")));

    public static TheoryData<GgufVocabCase> VocabCases() =>
        [.. new[] { "llama-spm", "phi-3", "gpt-2" }.SelectMany(TokenizerFixtures.GgufVocabCases)];

    public static TheoryData<string> ReferencePrompts() => [.. ReferenceRecords().Select(r => r.Prompt)];

    [Theory]
    [MemberData(nameof(VocabCases))]
    public void Encode_gives_llama_cpp_ids_for_every_vocab_test_text(GgufVocabCase vector)
    {
        var tokenizer = TokenizerFixtures.GgufVocab(vector.Vocab);

        Assert.Equal(vector.Ids, tokenizer.Encode(vector.Text, addSpecial: false));
    }

    [Theory]
    [MemberData(nameof(VocabCases))]
    public void Decode_of_llama_cpp_ids_gives_the_text_back(GgufVocabCase vector)
    {
        var tokenizer = TokenizerFixtures.GgufVocab(vector.Vocab);
        string expected = vector.Text;

        Assert.Equal(expected, tokenizer.Decode(vector.Ids));
        Assert.Equal(Encoding.UTF8.GetBytes(expected), HuggingFaceTokenizerTests.Streamed(tokenizer, vector.Ids));
    }

    [Fact]
    public void Metadata_gives_special_ids_end_ids_and_chat_template()
    {
        var spm = TokenizerFixtures.GgufVocab("llama-spm");
        var phi3 = TokenizerFixtures.GgufVocab("phi-3");
        var gpt2 = TokenizerFixtures.GgufVocab("gpt-2");

        Assert.Equal(("llama", 1, 32000), (spm.Model, spm.BosId, spm.VocabSize));
        Assert.Equal([2], spm.EndIds);
        Assert.Null(spm.ChatTemplate);
        Assert.Equal([1, 15043, 3186], spm.Encode("Hello world", addSpecial: true));
        Assert.True(spm.IsSpecial(1) && spm.IsSpecial(0) && !spm.IsSpecial(15043));
        // Phi-3 ends a turn with <|end|> (32007), a user-defined token llama.cpp also stops on.
        Assert.Equal([32000, 32007], phi3.EndIds);
        Assert.StartsWith("{{ bos_token }}", phi3.ChatTemplate, StringComparison.Ordinal);
        Assert.Equal(("<s>", "<|endoftext|>"), (phi3.BosToken, phi3.EosToken));
        Assert.Equal(("gpt2", (int?)null), (gpt2.Model, gpt2.BosId));
        Assert.Equal([50256], gpt2.EndIds);
    }

    [Fact]
    public void Special_tokens_written_in_text_are_matched_as_themselves()
    {
        var phi3 = TokenizerFixtures.GgufVocab("phi-3");
        var gpt2 = TokenizerFixtures.GgufVocab("gpt-2");

        var ids = phi3.Encode("<|user|>\nHi<|end|>\n<|assistant|>", addSpecial: true);

        // As llama.cpp: Phi-3's special tokens swallow the whitespace after them (rstrip), and text after
        // a special token gets SentencePiece's space prefix: "Hi" is "▁Hi".
        Assert.Equal([1, 32010, phi3.Encode("Hi", addSpecial: false).Single(), 32007, 32001], ids);
        Assert.Equal([15496, 50256, 15496], gpt2.Encode("Hello<|endoftext|>Hello", addSpecial: false));
        Assert.Equal("HelloHello", gpt2.Decode([15496, 50256, 15496]));
    }

    [Theory]
    [MemberData(nameof(ReferencePrompts))]
    public void Stories260K_gguf_tokenizer_encodes_reference_prompts_as_llama2c(string prompt)
    {
        var record = ReferenceRecords().Single(r => r.Prompt == prompt);

        Assert.Equal(record.PromptIds, Stories.Value.Encode(prompt, addSpecial: true));
        Assert.Equal(Llama2c.Value.Encode(prompt, addSpecial: false), Stories.Value.Encode(prompt, addSpecial: false));
    }

    [Theory]
    [MemberData(nameof(ReferencePrompts))]
    public void Stories260K_gguf_tokenizer_encodes_and_decodes_generated_text_as_llama2c(string prompt)
    {
        var record = ReferenceRecords().Single(r => r.Prompt == prompt);
        // A story that ended with BOS carries BOS's piece "\n<s>\n" in its text; llama2.c's encoder spells "<s>"
        // as characters where this one (as llama.cpp) matches it as the control token, so it is left out here.
        string story = record.Prompt + record.CompletionText.Replace("\n<s>\n", "\n", StringComparison.Ordinal);

        Assert.Equal(Llama2c.Value.Encode(story, addSpecial: true), Stories.Value.Encode(story, addSpecial: true));
        int[] ids = [.. record.PromptIds, .. record.GreedyIds.Where(id => id != 1)];
        Assert.Equal(Llama2c.Value.Decode(ids), Stories.Value.Decode(ids));
        for (int i = 1; i < ids.Length; i++)
        {
            Assert.Equal(Llama2c.Value.TokenBytes(ids[i - 1], ids[i]).ToArray(), Stories.Value.TokenBytes(ids[i - 1], ids[i]).ToArray());
        }
    }

    [Fact]
    public void Stories260K_gguf_vocabulary_matches_tok512()
    {
        var stories = Stories.Value;

        Assert.Equal(512, stories.VocabSize);
        Assert.Equal(1, stories.BosId);
        Assert.Equal([2], stories.EndIds);
        Assert.Equal("<0x0A>", stories.PieceOf(13));
        Assert.Equal("\n", stories.Decode([13]));
        Assert.Equal([1, 410, 13, 1, 410, 13], stories.Encode("\n<s>\n", addSpecial: true)); // "<s>" in text is BOS itself, and text after it gets the space prefix again
    }

    [Fact]
    public void Load_of_a_gguf_without_a_supported_tokenizer_names_the_problem()
    {
        using var gguf = GgufFile.Open(TokenizerFixtures.StoriesGguf);
        Assert.Equal("llama", gguf.GetValue("tokenizer.ggml.model").AsString());

        string path = Path.Combine(Path.GetTempPath(), $"no-tokenizer-{Guid.NewGuid():N}.gguf");
        try
        {
            // The same file with its model name changed to "bert" (same length, so offsets still hold).
            byte[] bytes = File.ReadAllBytes(TokenizerFixtures.StoriesGguf);
            int at = IndexOf(bytes, "tokenizer.ggml.model"u8) + "tokenizer.ggml.model"u8.Length + 4 + 8;
            Assert.Equal("llama", Encoding.ASCII.GetString(bytes, at, 5));
            "bertt"u8.CopyTo(bytes.AsSpan(at));
            File.WriteAllBytes(path, bytes);

            var error = Assert.Throws<NotSupportedException>(() => GgufTokenizer.Load(path));
            Assert.Contains("\"bertt\"", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static int IndexOf(byte[] haystack, ReadOnlySpan<byte> needle) => haystack.AsSpan().IndexOf(needle);

    private sealed record ReferenceRecord(string Prompt, int[] PromptIds, int[] GreedyIds, string CompletionText);

    private static IEnumerable<ReferenceRecord> ReferenceRecords()
    {
        foreach (string line in File.ReadLines(Path.Combine(RepoPaths.Root, "tests", "Integration", "reference", "greedy.jsonl")))
        {
            using var document = JsonDocument.Parse(line);
            var r = document.RootElement;
            yield return new ReferenceRecord(
                r.GetProperty("prompt").GetString()!,
                [.. r.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32())],
                [.. r.GetProperty("greedy_ids").EnumerateArray().Select(e => e.GetInt32())],
                r.GetProperty("completion_text").GetString()!);
        }
    }
}
