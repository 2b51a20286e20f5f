// Throwaway: how exact are Microsoft.ML.Tokenizers' BpeTokenizer and Tokenizers.DotNet on the public fixtures?
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

string root = args.Length > 0 ? args[0] : "tests/fixtures/tokenizers";
if (args.Length > 1) { Differential.Run(root); return; }
var folders = new Dictionary<string, string> { ["llama3"] = "llama3", ["qwen3"] = "qwen3", ["llama2"] = "spm-bpe-32k" };
var records = File.ReadLines(Path.Combine(root, "public-ids.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();

foreach (var (name, folder) in folders)
{
    string json = Path.Combine(root, folder, "tokenizer.json");
    var rows = records.Where(r => r.GetProperty("tokenizer").GetString() == name).ToList();
    int[] Ints(JsonElement r, string p) => r.GetProperty(p).EnumerateArray().Select(e => e.GetInt32()).ToArray();

    // --- Microsoft.ML.Tokenizers BpeTokenizer, configured as closely as its options allow.
    try
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
        var model = doc.RootElement.GetProperty("model");
        var vocab = model.GetProperty("vocab").EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32())).ToList();
        var merges = model.GetProperty("merges").EnumerateArray().Select(m => m.ValueKind == JsonValueKind.String ? m.GetString()! : m[0].GetString() + " " + m[1].GetString()).ToList();
        var added = doc.RootElement.GetProperty("added_tokens").EnumerateArray().ToDictionary(a => a.GetProperty("content").GetString()!, a => a.GetProperty("id").GetInt32());
        bool byteLevel = name != "llama2";
        BpeTokenizer Make(bool bos)
        {
            var o = new BpeOptions(vocab) { Merges = merges, SpecialTokens = added, ByteLevel = byteLevel };
            if (byteLevel)
            {
                string pattern = doc.RootElement.GetProperty("pre_tokenizer").GetProperty("pretokenizers")[0].GetProperty("pattern").GetProperty("Regex").GetString()!;
                o.PreTokenizer = new RegexPreTokenizer(new Regex(pattern, RegexOptions.Compiled), added);
            }
            else
            {
                o.Normalizer = new SentencePieceNormalizer(removeExtraWhiteSpaces: false, addDummyPrefix: true, escapeWhiteSpaces: true, treatWhitespaceAsSuffix: false, specialTokens: added);
                o.UnknownToken = "<unk>";
                o.FuseUnknownTokens = true;
                if (bos) o.BeginningOfSentenceToken = "<s>";
            }
            return BpeTokenizer.Create(o);
        }
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var plain = Make(false);
        long loadMs = sw.ElapsedMilliseconds;
        var withBos = Make(true);
        int ids = 0, special = 0, decoded = 0;
        foreach (var r in rows)
        {
            string text = r.GetProperty("text").GetString()!;
            if (plain.EncodeToIds(text).SequenceEqual(Ints(r, "ids"))) ids++;
            if (withBos.EncodeToIds(text).SequenceEqual(Ints(r, "ids_with_special"))) special++;
            if (r.TryGetProperty("decoded", out var d) && plain.Decode(Ints(r, "ids"), considerSpecialTokens: true) == d.GetString()) decoded++;
        }
        Console.WriteLine($"ML.Tokenizers BpeTokenizer  {name,-7} ids {ids}/{rows.Count}  ids_with_special {special}/{rows.Count}  decoded {decoded}/{rows.Count(r => r.TryGetProperty("decoded", out _))}  (load {loadMs} ms)");
    }
    catch (Exception e) { Console.WriteLine($"ML.Tokenizers BpeTokenizer  {name}: {e.GetType().Name}: {e.Message}"); }

    // --- Tokenizers.DotNet (Hugging Face's Rust tokenizers through a native library).
    try
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        using var hf = new Tokenizers.DotNet.Tokenizer(json);
        long loadMs = sw.ElapsedMilliseconds;
        int ids = 0, special = 0, decoded = 0;
        foreach (var r in rows)
        {
            string text = r.GetProperty("text").GetString()!;
            var got = hf.Encode(text).Select(i => (int)i).ToArray();
            if (got.SequenceEqual(Ints(r, "ids"))) ids++;
            if (got.SequenceEqual(Ints(r, "ids_with_special"))) special++;
            if (r.TryGetProperty("decoded", out var d) && hf.Decode(Ints(r, "ids").Select(i => (uint)i).ToArray()) == d.GetString()) decoded++;
        }
        Console.WriteLine($"Tokenizers.DotNet 1.4.1     {name,-7} ids {ids}/{rows.Count}  ids_with_special {special}/{rows.Count}  decoded {decoded}/{rows.Count(r => r.TryGetProperty("decoded", out _))}  (load {loadMs} ms; Encode has no add_special switch)");
    }
    catch (Exception e) { Console.WriteLine($"Tokenizers.DotNet  {name}: {e.GetType().Name}: {e.Message}"); }
}
