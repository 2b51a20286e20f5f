using System.Text;
using Pipeline.Inference.Tokenization;
using Pipeline.Inference.Tokenization.HuggingFace;

namespace Pipeline.Integration.Tokenizers;

/// <summary>
/// The tokenizer.json tokenizers (Llama 3, Qwen 3, a SentencePiece-style 32k BPE) against the
/// reference encodings in tests/fixtures/tokenizers/public-ids.jsonl.
/// </summary>
public sealed class HuggingFaceTokenizerTests
{
    public static TheoryData<PublicIdsRecord> Records() => [.. TokenizerFixtures.PublicIds()];

    [Theory]
    [MemberData(nameof(Records))]
    public void Encode_without_special_tokens_gives_the_reference_ids(PublicIdsRecord record)
    {
        var tokenizer = TokenizerFixtures.HuggingFaceNamed(record.Tokenizer);

        Assert.Equal(record.Ids, tokenizer.Encode(record.Text, addSpecial: false));
    }

    [Theory]
    [MemberData(nameof(Records))]
    public void Encode_with_special_tokens_gives_the_reference_ids_with_special(PublicIdsRecord record)
    {
        var tokenizer = TokenizerFixtures.HuggingFaceNamed(record.Tokenizer);

        Assert.Equal(record.IdsWithSpecial, tokenizer.Encode(record.Text, addSpecial: true));
    }

    [Theory]
    [MemberData(nameof(Records))]
    public void Decode_of_the_reference_ids_gives_the_reference_text(PublicIdsRecord record)
    {
        var tokenizer = TokenizerFixtures.HuggingFaceNamed(record.Tokenizer);
        // The reference decoded with special tokens kept; ITokenizer.Decode omits them.
        string expected = record.Decoded ?? string.Empty;
        string withoutSpecial = record.Ids.Where(tokenizer.IsSpecial)
            .Aggregate(expected, (text, id) => text.Replace(tokenizer.PieceOf(id), string.Empty, StringComparison.Ordinal));

        Assert.Equal(expected, tokenizer.Decode(record.Ids, skipSpecial: false));
        Assert.Equal(withoutSpecial, tokenizer.Decode(record.Ids));
    }

    [Theory]
    [MemberData(nameof(Records))]
    public void TokenBytes_streamed_one_by_one_give_Decode_of_ids_with_special(PublicIdsRecord record)
    {
        var tokenizer = TokenizerFixtures.HuggingFaceNamed(record.Tokenizer);
        var ids = record.IdsWithSpecial;

        Assert.Equal(Encoding.UTF8.GetBytes(tokenizer.Decode(ids)), Streamed(tokenizer, ids));
    }

    [Fact]
    public void Spm_style_tokenizer_adds_bos_and_strips_the_prefix_space_only_at_the_start()
    {
        var tokenizer = TokenizerFixtures.HuggingFaceNamed("llama2");
        var ids = tokenizer.Encode("Hello world", addSpecial: true);

        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal([2], tokenizer.EndIds);
        Assert.Equal("Hello", Encoding.UTF8.GetString(tokenizer.TokenBytes(1, ids[1])));
        Assert.Equal("Hello", Encoding.UTF8.GetString(tokenizer.TokenBytes(-1, ids[1])));
        Assert.Equal(" world", Encoding.UTF8.GetString(tokenizer.TokenBytes(ids[1], ids[2])));
        Assert.Equal(" Hello", Encoding.UTF8.GetString(tokenizer.TokenBytes(ids[2], ids[1])));
        Assert.True(tokenizer.TokenBytes(-1, 1).IsEmpty);
        // ᚠ (E1 9A A0) has no piece: byte fallback to <0xE1> <0x9A> <0xA0>, each giving its byte.
        var rune = tokenizer.Encode("\u16A0", addSpecial: false);
        Assert.Equal(["\u2581", "<0xE1>", "<0x9A>", "<0xA0>"], rune.Select(tokenizer.PieceOf));
        Assert.Equal([0xE1], tokenizer.TokenBytes(rune[0], rune[1]).ToArray());
        Assert.Equal("\u16A0", tokenizer.Decode(rune));
    }

    [Fact]
    public void Byte_level_tokenizers_give_the_raw_bytes_of_a_split_character()
    {
        var tokenizer = TokenizerFixtures.HuggingFaceNamed("qwen3");
        var ids = tokenizer.Encode("🙂 emoji 🚀", addSpecial: false);

        // 🚀 (F0 9F 9A 80) is split over tokens; each gives its own bytes, so a stream can hold back the partial character.
        Assert.Equal([0xF0, 0x9F, 0x9A, 0x80], ids.TakeLast(3).SelectMany(id => tokenizer.TokenBytes(0, id).ToArray()).TakeLast(4));
        Assert.Equal("🙂 emoji 🚀", tokenizer.Decode(ids));
        Assert.EndsWith("\uFFFD", tokenizer.Decode(ids.Take(ids.Count - 1).ToArray()), StringComparison.Ordinal);
    }

    [Fact]
    public void Config_gives_the_chat_template_special_tokens_and_end_ids()
    {
        var llama3 = TokenizerFixtures.HuggingFaceNamed("llama3");
        var qwen3 = TokenizerFixtures.HuggingFaceNamed("qwen3");
        var spm = TokenizerFixtures.HuggingFaceNamed("llama2");

        Assert.Contains("<|start_header_id|>", llama3.ChatTemplate, StringComparison.Ordinal);
        Assert.Contains("<|im_start|>", qwen3.ChatTemplate, StringComparison.Ordinal);
        Assert.Null(spm.ChatTemplate);
        Assert.Null(llama3.BosId); // its post-processor adds nothing; the chat template writes <|begin_of_text|>
        Assert.Null(qwen3.BosId);
        Assert.Equal("<|begin_of_text|>", llama3.BosToken);
        Assert.Equal([128001], llama3.EndIds);
        Assert.Equal([151645], qwen3.EndIds);
        Assert.Equal(128256, llama3.VocabSize);
        Assert.Equal(151669, qwen3.VocabSize);
        Assert.True(qwen3.IsSpecial(151644));
        Assert.False(qwen3.IsSpecial(151668)); // </think> is added but not special: it decodes as text
        Assert.Equal("</think>", qwen3.Decode([151668]));
        Assert.Equal("<|im_start|>", qwen3.PieceOf(151644));
        Assert.Equal("Ġworld", llama3.PieceOf(1917));
    }

    [Fact]
    public void Encode_of_long_repetitive_text_is_not_quadratic()
    {
        var tokenizer = TokenizerFixtures.HuggingFaceNamed("llama3");
        tokenizer.Encode(new string('a', 1000), addSpecial: false); // warm up

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var ids = tokenizer.Encode(new string('a', 200_000) + new string(' ', 200_000) + "x", addSpecial: false);

        // One 200k-character word and a 200k-space run: a quadratic merge would take minutes.
        Assert.Equal(new string('a', 200_000) + new string(' ', 200_000) + "x", tokenizer.Decode(ids));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
    }

    [Theory]
    [InlineData("model", """{"type": "WordPiece", "vocab": {}}""", "WordPiece")]
    [InlineData("pre_tokenizer", """{"type": "BertPreTokenizer"}""", "BertPreTokenizer")]
    [InlineData("normalizer", """{"type": "Precompiled", "precompiled_charsmap": ""}""", "Precompiled")]
    [InlineData("decoder", """{"type": "WordPiece"}""", "WordPiece")]
    [InlineData("post_processor", """{"type": "Mystery"}""", "Mystery")]
    public void Load_of_an_unsupported_component_names_its_type(string part, string json, string type)
    {
        string folder = WriteTokenizer(part, json);
        try
        {
            var error = Assert.Throws<NotSupportedException>(() => HuggingFaceTokenizer.LoadFolder(folder));
            Assert.Contains($"\"{type}\"", error.Message, StringComparison.Ordinal);
            Assert.Contains(part, error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Load_of_an_older_file_whose_model_has_no_type_reads_it_as_BPE()
    {
        var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(TokenizerFixtures.TokenizerFolder("spm-bpe-32k"), "tokenizer.json")))!;
        root["model"]!.AsObject().Remove("type");
        string folder = Directory.CreateTempSubdirectory("tok-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "tokenizer.json"), root.ToJsonString());
            var untyped = HuggingFaceTokenizer.LoadFolder(folder);

            Assert.Equal(TokenizerFixtures.HuggingFaceNamed("llama2").Encode("Hello, world!", addSpecial: true), untyped.Encode("Hello, world!", addSpecial: true));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Load_of_malformed_json_throws_InvalidDataException_naming_the_file()
    {
        string folder = Directory.CreateTempSubdirectory("tok-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "tokenizer.json"), """{"model": {"type": "BPE", "vocab": """);
            var error = Assert.Throws<InvalidDataException>(() => HuggingFaceTokenizer.LoadFolder(folder));
            Assert.Contains("tokenizer.json", error.Message, StringComparison.Ordinal);

            File.WriteAllText(Path.Combine(folder, "tokenizer.json"), """{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}, "decoder": {"type": "ByteLevel"}}""");
            error = Assert.Throws<InvalidDataException>(() => HuggingFaceTokenizer.LoadFolder(folder));
            Assert.Contains("merges", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    internal static byte[] Streamed(ITokenizer tokenizer, IReadOnlyList<int> ids)
    {
        var bytes = new List<byte>();
        int previous = -1;
        foreach (int id in ids)
        {
            bytes.AddRange(tokenizer.TokenBytes(previous, id));
            previous = id;
        }

        return [.. bytes];
    }

    // A copy of the SentencePiece-style tokenizer.json with one component replaced.
    private static string WriteTokenizer(string part, string json)
    {
        var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(TokenizerFixtures.TokenizerFolder("spm-bpe-32k"), "tokenizer.json")))!;
        root[part] = System.Text.Json.Nodes.JsonNode.Parse(json);
        string folder = Directory.CreateTempSubdirectory("tok-").FullName;
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), root.ToJsonString());
        return folder;
    }
}
