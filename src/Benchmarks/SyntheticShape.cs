using System.Globalization;
using Pipeline.Inference.Models;

namespace Pipeline.Benchmarks;

/// <summary>
/// The shape of a synthetic Llama model: a named size ("15m", "110m") or a spec such as
/// "dim=288,layers=6,heads=6,kv_heads=6,hidden=768,vocab=32000,seq_len=256".
/// </summary>
internal static class SyntheticShape
{
    /// <summary>llama2.c's stories15M shape.</summary>
    public static LlamaConfig Stories15M => new(288, 768, 6, 6, 6, 32000, 256, SharedClassifier: true);

    /// <summary>
    /// llama2.c's stories110M shape, but with a 512-position context instead of 1024: it bounds
    /// the KV cache (75 MB a sequence at 1024) and every benchmark here stays well inside 512.
    /// </summary>
    public static LlamaConfig Stories110M => new(768, 2048, 12, 12, 12, 32000, 512, SharedClassifier: true);

    public static LlamaConfig Parse(string text)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(text);
        switch (text.Trim().ToLowerInvariant())
        {
            case "15m": return Stories15M;
            case "110m": return Stories110M;
        }
        var config = Stories15M;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = part.Split('=', 2, StringSplitOptions.TrimEntries);
            if (kv.Length != 2 || !int.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v <= 0)
                throw new ArgumentException($"synthetic shape: '{part}' is not key=positive-integer");
            config = kv[0].ToLowerInvariant() switch
            {
                "dim" => config with { Dim = v },
                "layers" => config with { Layers = v },
                "heads" => config with { Heads = v },
                "kv_heads" or "kvheads" or "kv" => config with { KvHeads = v },
                "hidden" or "hidden_dim" => config with { HiddenDim = v },
                "vocab" or "vocab_size" => config with { VocabSize = v },
                "seq_len" or "seq" => config with { SeqLen = v },
                _ => throw new ArgumentException($"synthetic shape: unknown key '{kv[0]}' (dim, layers, heads, kv_heads, hidden, vocab, seq_len)"),
            };
        }
        if (config.VocabSize < 259)
            throw new ArgumentException("synthetic shape: vocab must be at least 259 (3 control pieces and 256 byte pieces)");
        try { config.Validate(); }
        catch (InvalidDataException e) { throw new ArgumentException($"synthetic shape: {e.Message}"); }
        return config;
    }

    /// <summary>A file-name-safe name for the shape, e.g. "d288-l6-h6-kv6-f768-v32000-s256".</summary>
    public static string Name(LlamaConfig c) => $"d{c.Dim}-l{c.Layers}-h{c.Heads}-kv{c.KvHeads}-f{c.HiddenDim}-v{c.VocabSize}-s{c.SeqLen}";
}
