using System.Text.Json;
using Pipeline.Inference.Tokenization.Gguf;
using Pipeline.Inference.Tokenization.HuggingFace;

namespace Pipeline.Integration.Tokenizers;

/// <summary>One line of tests/fixtures/tokenizers/public-ids.jsonl: a reference encoding by an independent implementation.</summary>
public sealed record PublicIdsRecord(string Tokenizer, string Text, int[] Ids, int[] IdsWithSpecial, string? Decoded)
{
    // Printed by xunit for each theory case.
    public override string ToString() => $"{Tokenizer}: {JsonSerializer.Serialize(Text)}";
}

/// <summary>One of llama.cpp's tokenizer test vectors: a text of a .gguf.inp file and its line of the .out file.</summary>
public sealed record GgufVocabCase(string Vocab, int Index, string Text, int[] Ids)
{
    public override string ToString() => $"{Vocab} #{Index}: {JsonSerializer.Serialize(Text)}";
}

/// <summary>The real tokenizer files under tests/fixtures, loaded once per test run (they are immutable).</summary>
internal static class TokenizerFixtures
{
    // public-ids.jsonl names the SentencePiece-style tokenizer "llama2"; its folder is spm-bpe-32k.
    private static readonly Dictionary<string, string> FolderOf = new(StringComparer.Ordinal)
    {
        ["llama3"] = "llama3",
        ["qwen3"] = "qwen3",
        ["llama2"] = "spm-bpe-32k",
    };

    private static readonly Dictionary<string, Lazy<HuggingFaceTokenizer>> HuggingFace = FolderOf.ToDictionary(
        kv => kv.Key, kv => new Lazy<HuggingFaceTokenizer>(() => HuggingFaceTokenizer.LoadFolder(TokenizerFolder(kv.Value))));

    private static readonly Dictionary<string, Lazy<GgufTokenizer>> Gguf = new[] { "llama-spm", "phi-3", "gpt-2" }.ToDictionary(
        name => name, name => new Lazy<GgufTokenizer>(() => GgufTokenizer.Load(VocabFile(name))));

    public static string TokenizersRoot => Path.Combine(RepoPaths.Root, "tests", "fixtures", "tokenizers");

    public static string TokenizerFolder(string folder) => Path.Combine(TokenizersRoot, folder);

    public static string VocabFile(string name) => Path.Combine(RepoPaths.Root, "tests", "fixtures", "gguf-vocab", $"ggml-vocab-{name}.gguf");

    public static string StoriesGguf => Path.Combine(RepoPaths.Root, "tests", "fixtures", "models", "stories260k", "stories260K-f32.gguf");

    /// <summary>The tokenizer.json tokenizer public-ids.jsonl calls <paramref name="name"/>.</summary>
    public static HuggingFaceTokenizer HuggingFaceNamed(string name) => HuggingFace[name].Value;

    public static GgufTokenizer GgufVocab(string name) => Gguf[name].Value;

    public static IEnumerable<PublicIdsRecord> PublicIds()
    {
        foreach (string line in File.ReadLines(Path.Combine(TokenizersRoot, "public-ids.jsonl")))
        {
            using var document = JsonDocument.Parse(line);
            var r = document.RootElement;
            yield return new PublicIdsRecord(
                r.GetProperty("tokenizer").GetString()!,
                r.GetProperty("text").GetString()!,
                [.. r.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32())],
                [.. r.GetProperty("ids_with_special").EnumerateArray().Select(e => e.GetInt32())],
                r.TryGetProperty("decoded", out var decoded) ? decoded.GetString() : null);
        }
    }

    /// <summary>llama.cpp's vectors: texts separated by "\n__ggml_vocab_test__\n", expected ids one line per text.</summary>
    public static IEnumerable<GgufVocabCase> GgufVocabCases(string name)
    {
        string file = VocabFile(name);
        string[] texts = File.ReadAllText(file + ".inp").Split("\n__ggml_vocab_test__\n");
        string[] lines = File.ReadAllLines(file + ".out");
        for (int i = 0; i < lines.Length; i++)
        {
            int[] ids = [.. lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, System.Globalization.CultureInfo.InvariantCulture))];
            yield return new GgufVocabCase(name, i, texts[i], ids);
        }
    }
}
