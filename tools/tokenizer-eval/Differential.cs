using System.Text;
using Pipeline.Inference.Tokenization.HuggingFace;

// Random text through our tokenizer.json engine and through Hugging Face's Rust tokenizers (Tokenizers.DotNet).
static class Differential
{
    static readonly string[] Pieces = ["Hello", " world", "'s", "'S", "'ll", " ", "  ", "\n", "\r\n", "\t", "\u00A0", "\u3000", "123", "4567", "3.14",
        "🙂", "🚀", "abc", "𝐀𝐁", "𠀀", "é", "e\u0301", "日本語", "Привет", "!!!", "...", "<|im_start|>", "<|begin_of_text|>", "<s>", "</s>", "▁", "ᚠ", "\u200B", "x²", "½",
        "ﬁ", "Ⅻ", "🇫🇷", "👨‍👩‍👧", "\u0000", "\u001F", "don't", "DON'T", "a", "_", "-", "=>", "http://x.y/z?q=1", "\uFEFF", "ǅ", "ʰ"];

    static Microsoft.ML.Tokenizers.BpeTokenizer MlFor(string json)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(json));
        var model = doc.RootElement.GetProperty("model");
        var vocab = model.GetProperty("vocab").EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32())).ToList();
        var merges = model.GetProperty("merges").EnumerateArray().Select(m => m.ValueKind == System.Text.Json.JsonValueKind.String ? m.GetString()! : m[0].GetString() + " " + m[1].GetString()).ToList();
        var added = doc.RootElement.GetProperty("added_tokens").EnumerateArray().ToDictionary(a => a.GetProperty("content").GetString()!, a => a.GetProperty("id").GetInt32());
        string pattern = doc.RootElement.GetProperty("pre_tokenizer").GetProperty("pretokenizers")[0].GetProperty("pattern").GetProperty("Regex").GetString()!;
        var o = new Microsoft.ML.Tokenizers.BpeOptions(vocab) { Merges = merges, SpecialTokens = added, ByteLevel = true,
            PreTokenizer = new Microsoft.ML.Tokenizers.RegexPreTokenizer(new System.Text.RegularExpressions.Regex(pattern), added) };
        return Microsoft.ML.Tokenizers.BpeTokenizer.Create(o);
    }

    public static void Run(string root)
    {
        foreach (var (name, folder) in new[] { ("llama3", "llama3"), ("qwen3", "qwen3"), ("spm", "spm-bpe-32k") })
        {
            var ours = HuggingFaceTokenizer.LoadFolder(Path.Combine(root, folder));
            var ml = name == "spm" ? null : MlFor(Path.Combine(root, folder, "tokenizer.json"));
            int mlSame = 0;
            using var rust = new Tokenizers.DotNet.Tokenizer(Path.Combine(root, folder, "tokenizer.json"));
            var random = new Random(12345);
            int same = 0, sameDecode = 0, n = 3000;
            for (int i = 0; i < n; i++)
            {
                var sb = new StringBuilder();
                int parts = random.Next(1, 12);
                for (int p = 0; p < parts; p++)
                {
                    if (random.Next(4) == 0) sb.Append(char.ConvertFromUtf32(random.Next(0x20, 0x3000)));
                    else sb.Append(Pieces[random.Next(Pieces.Length)]);
                }
                string text = sb.ToString();
                var a = ours.Encode(text, addSpecial: true).ToArray();
                var b = rust.Encode(text).Select(x => (int)x).ToArray();
                if (a.SequenceEqual(b)) same++;
                if (ml is not null && ml.EncodeToIds(text).SequenceEqual(b)) mlSame++;
                else if (i < 100000 && same + 20 > i) Console.WriteLine($"  {name} ids differ on {System.Text.Json.JsonSerializer.Serialize(text)}\n    ours {string.Join(",", a)}\n    rust {string.Join(",", b)}");
                string da = ours.Decode(b), db = rust.Decode(b.Select(x => (uint)x).ToArray());
                if (da == db) sameDecode++;
                else if (sameDecode + 10 > i) Console.WriteLine($"  {name} decode differs on {System.Text.Json.JsonSerializer.Serialize(text)}: ours {System.Text.Json.JsonSerializer.Serialize(da)} rust {System.Text.Json.JsonSerializer.Serialize(db)}");
            }
            Console.WriteLine($"differential {name}: ids equal {same}/{n}, decode equal {sameDecode}/{n}; ML.Tokenizers BpeTokenizer ids equal {(ml is null ? "n/a (no byte fallback)" : $"{mlSame}/{n}")}");
        }
    }
}
