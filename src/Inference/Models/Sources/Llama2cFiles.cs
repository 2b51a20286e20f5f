namespace Pipeline.Inference.Models.Sources;

/// <summary>Finds a llama2.c folder's files: the checkpoint and the tokenizer.</summary>
internal static class Llama2cFiles
{
    /// <summary>The llama2.c checkpoint of a model folder: a *.bin that is not the tokenizer.</summary>
    public static string? FindCheckpoint(string directory) =>
        Directory.EnumerateFiles(directory, "*.bin")
            .Where(f => Path.GetFileName(f) != "tokenizer.bin" && !Path.GetFileName(f).StartsWith("tok", StringComparison.OrdinalIgnoreCase))
            .OrderBy(f => f, StringComparer.Ordinal)
            .FirstOrDefault();

    /// <summary>The llama2.c tokenizer of a folder: tokenizer.bin, else the first tok*.bin.</summary>
    public static string? FindTokenizer(string directory)
    {
        var named = Path.Combine(directory, "tokenizer.bin");
        if (File.Exists(named)) return named;
        return Directory.EnumerateFiles(directory, "tok*.bin").OrderBy(f => f, StringComparer.Ordinal).FirstOrDefault();
    }
}
