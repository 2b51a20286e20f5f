using Pipeline.Inference.Tokenization.Gguf;
using Pipeline.Inference.Tokenization.HuggingFace;

namespace Pipeline.Inference.Tokenization;

/// <summary>
/// A model's tokenizer and what travels with it: where it came from, the chat template, and the
/// bos/eos token texts a chat template renders.
/// </summary>
/// <param name="Tokenizer">The tokenizer.</param>
/// <param name="Kind">"tokenizer.json", "gguf:llama" / "gguf:gpt2", or "llama2.c" (for <c>pipeline inspect</c>).</param>
/// <param name="Path">The file it was read from.</param>
/// <param name="ChatTemplate">The model's Jinja chat template, or null.</param>
/// <param name="BosToken">The bos token's text, or null.</param>
/// <param name="EosToken">The eos token's text, or null.</param>
internal sealed record TokenizerSource(ITokenizer Tokenizer, string Kind, string Path, string? ChatTemplate, string? BosToken, string? EosToken)
{
    /// <summary>
    /// Finds and reads the tokenizer of a model: a GGUF file, a <c>tokenizer.json</c>, or a folder
    /// holding a <c>tokenizer.json</c> (with its <c>tokenizer_config.json</c>), one GGUF file, or a
    /// llama2.c tokenizer (<c>tokenizer.bin</c> or <c>tok*.bin</c>), in that order of preference.
    /// </summary>
    public static TokenizerSource Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (File.Exists(path))
        {
            return LoadFile(path);
        }

        if (!Directory.Exists(path))
        {
            throw new FileNotFoundException($"No model file or folder at '{path}'.", path);
        }

        string json = System.IO.Path.Combine(path, "tokenizer.json");
        if (File.Exists(json))
        {
            return LoadFile(json);
        }

        var ggufs = Directory.GetFiles(path, "*.gguf").Order(StringComparer.Ordinal).ToArray();
        // A model split into shards ("-00001-of-00003.gguf") keeps its metadata in the first.
        var firsts = ggufs.Where(f => !IsLaterShard(f)).ToArray();
        string? llama2c = firsts.Length == 0 ? Runtime.LoadedModel.FindTokenizer(path) : null;
        if (llama2c is not null)
        {
            return new TokenizerSource(Pipeline.Inference.Tokenization.Tokenizer.Load(llama2c), "llama2.c", llama2c, null, null, null);
        }

        return firsts.Length switch
        {
            1 => LoadFile(firsts[0]),
            0 => throw new FileNotFoundException(
                $"'{path}' holds no tokenizer: no tokenizer.json, no .gguf file, no llama2.c tokenizer.bin or tok*.bin.", json),
            _ => throw new InvalidDataException(
                $"'{path}' holds several GGUF files ({string.Join(", ", firsts.Select(System.IO.Path.GetFileName))}); name the one to use."),
        };
    }

    private static TokenizerSource LoadFile(string file)
    {
        if (file.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
        {
            var gguf = GgufTokenizer.Load(file);
            return new TokenizerSource(gguf, $"gguf:{gguf.Model}", file, gguf.ChatTemplate, gguf.BosToken, gguf.EosToken);
        }

        if (System.IO.Path.GetFileName(file).Equals("tokenizer.json", StringComparison.OrdinalIgnoreCase))
        {
            string config = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(file))!, "tokenizer_config.json");
            var hf = HuggingFaceTokenizer.Load(file, File.Exists(config) ? config : null);
            return new TokenizerSource(hf, "tokenizer.json", file, hf.ChatTemplate, hf.BosToken, hf.EosToken);
        }

        throw new InvalidDataException($"'{file}' is neither a GGUF file nor a tokenizer.json.");
    }

    private static bool IsLaterShard(string file)
    {
        var shard = System.Text.RegularExpressions.Regex.Match(
            System.IO.Path.GetFileName(file), @"-(\d+)-of-\d+\.gguf$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);
        return shard.Success && shard.Groups[1].Value.TrimStart('0') != "1";
    }
}
