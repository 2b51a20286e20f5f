using System.Text.Json;
using Pipeline.Inference.Text;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Integration;

/// <summary>Checks the tokenizer against the outputs llama2.c's run.c stored in reference/greedy.jsonl.</summary>
public sealed class TokenizerReferenceTests
{
    // The model's BOS piece as llama2.c's tok512.bin spells it; see the completion test below.
    private const string BosPieceText = "\n<s>\n";

    private static readonly Tokenizer Tokenizer = Tokenizer.Load(Path.Combine(RepoPaths.ModelDir, "tok512.bin"));

    public static TheoryData<string> Prompts()
    {
        var data = new TheoryData<string>();
        foreach (var record in ReadRecords())
        {
            data.Add(record.Prompt);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Prompts))]
    public void Encode_reference_prompt_with_bos_gives_llama2c_prompt_ids(string prompt)
    {
        var record = ReadRecords().Single(r => r.Prompt == prompt);

        Assert.Equal(record.PromptIds, Tokenizer.Encode(prompt, addSpecial: true));
    }

    [Theory]
    [MemberData(nameof(Prompts))]
    public void Decode_reference_greedy_ids_after_prompt_gives_completion_text(string prompt)
    {
        var record = ReadRecords().Single(r => r.Prompt == prompt);
        var ids = record.GreedyIds;
        bool endsWithBos = ids[^1] == Tokenizer.BosId;
        var completionIds = endsWithBos ? ids[..^1] : ids;

        // The reference text of a story that ended with BOS also carries BOS's piece text: the
        // generator decoded it. Generation stops before BOS, and control ids decode to nothing.
        string expected = endsWithBos ? record.CompletionText[..^BosPieceText.Length] : record.CompletionText;
        if (endsWithBos)
        {
            Assert.EndsWith(BosPieceText, record.CompletionText, StringComparison.Ordinal);
        }

        var text = new GeneratedText(Tokenizer);
        var previous = record.PromptIds[^1];
        var deltas = new List<string>();
        foreach (var id in completionIds)
        {
            text.Add(previous, id);
            deltas.Add(text.Release(heldBytes: 0));
            previous = id;
        }
        string streamed = string.Concat(deltas) + text.ReleaseAll(stopAt: null);
        Assert.Equal(expected, streamed);
        Assert.Equal(record.Prompt + expected, Tokenizer.Decode([.. record.PromptIds, .. completionIds]));
    }

    [Theory]
    [MemberData(nameof(Prompts))]
    public void Both_encoders_reference_prompt_with_bos_give_llama2c_prompt_ids(string prompt)
    {
        var record = ReadRecords().Single(r => r.Prompt == prompt);
        var vocabulary = TokenVocabulary.Read(Path.Combine(RepoPaths.ModelDir, "tok512.bin"));

        Assert.Equal(record.PromptIds, new Llama2cEncoder(vocabulary).Encode(prompt, addBos: true));
        Assert.Equal(record.PromptIds, SentencePieceEncoder.Create(vocabulary).Encode(prompt, addBos: true));
    }

    [Fact]
    public void Decode_prompt_ids_starting_with_bos_gives_prompt_back()
    {
        foreach (var record in ReadRecords())
        {
            Assert.Equal(record.Prompt, Tokenizer.Decode(record.PromptIds));
        }
    }

    [Fact]
    public void Encode_empty_text_with_bos_gives_only_bos()
    {
        Assert.Equal([Tokenizer.BosId!.Value], Tokenizer.Encode("", addSpecial: true));
        Assert.Empty(Tokenizer.Encode("", addSpecial: false));
    }

    [Fact]
    public void Load_tok512_has_llama2c_vocabulary_and_special_ids()
    {
        Assert.Equal(512, Tokenizer.VocabSize);
        Assert.Equal(1, Tokenizer.BosId);
        Assert.Equal([2], Tokenizer.EndIds);
        Assert.Equal(BosPieceText, Tokenizer.PieceOf(1));
        Assert.True(Tokenizer.IsSpecial(0) && Tokenizer.IsSpecial(1) && Tokenizer.IsSpecial(2));
        Assert.False(Tokenizer.IsSpecial(3));
    }

    [Fact]
    public void Streamed_text_of_a_character_split_over_byte_tokens_comes_out_once_complete()
    {
        // '€' has a piece, '😀' does not: it falls back to its four UTF-8 bytes.
        var ids = Tokenizer.Encode("a😀", addSpecial: true);
        var text = new GeneratedText(Tokenizer);
        var deltas = new List<string>();
        for (int i = 1; i < ids.Count; i++)
        {
            text.Add(ids[i - 1], ids[i]);
            deltas.Add(text.Release(heldBytes: 0));
        }

        Assert.Equal(["a", "", "", "", "😀"], deltas);
        Assert.Equal("", text.ReleaseAll(stopAt: null));
    }

    [Fact]
    public void Streamed_text_ending_inside_a_character_ends_with_a_replacement_character()
    {
        var text = new GeneratedText(Tokenizer);
        text.Add(1, 0xF0 + 3);
        Assert.Equal("", text.Release(heldBytes: 0));
        text.Add(0xF0 + 3, 0x9F + 3);
        Assert.Equal("", text.Release(heldBytes: 0));

        Assert.Equal("\uFFFD", text.ReleaseAll(stopAt: null));
    }

    [Fact]
    public void Decode_control_tokens_give_no_text()
    {
        Assert.Equal("", Tokenizer.Decode([0, 1, 2]));
    }

    private static IEnumerable<ReferenceRecord> ReadRecords()
    {
        string path = Path.Combine(RepoPaths.Root, "tests", "Integration", "reference", "greedy.jsonl");
        foreach (string line in File.ReadLines(path).Where(l => l.Length > 0))
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            yield return new ReferenceRecord(
                root.GetProperty("prompt").GetString()!,
                [.. root.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32())],
                [.. root.GetProperty("greedy_ids").EnumerateArray().Select(e => e.GetInt32())],
                root.GetProperty("completion_text").GetString()!);
        }
    }

    private sealed record ReferenceRecord(string Prompt, int[] PromptIds, int[] GreedyIds, string CompletionText);
}
