using Pipeline.Inference.Onnx;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Inference.Runtime;

/// <summary>
/// A model folder made ready to run: its decoder session and its tokenizer, both immutable.
/// A folder holds either an exported <c>model.onnx</c> or a llama2.c checkpoint (<c>*.bin</c>,
/// converted on first use and cached), plus the tokenizer (<c>tokenizer.bin</c> or <c>tok*.bin</c>).
/// </summary>
internal sealed class LoadedModel : IDisposable
{
    private LoadedModel(string name, DecoderModel decoder, ITokenizer tokenizer)
    {
        Name = name;
        Decoder = decoder;
        Tokenizer = tokenizer;
    }

    public string Name { get; }
    public DecoderModel Decoder { get; }
    public ITokenizer Tokenizer { get; }

    /// <summary>The model shipped with the library: stories260K, next to the binaries.</summary>
    public static string EmbeddedModelDirectory => Path.Combine(AppContext.BaseDirectory, "models", "stories260k");

    public static LoadedModel Load(string directory, RunnerOptions? options = null, string? cacheDirectory = null)
    {
        var (onnx, tokenizerPath, name) = Resolve(directory, cacheDirectory);
        var tokenizer = Tokenization.Tokenizer.Load(tokenizerPath);
        var decoder = DecoderModel.Load(onnx, options);
        if (tokenizer.VocabSize != decoder.Config.VocabSize)
        {
            decoder.Dispose();
            throw new InvalidDataException($"tokenizer has {tokenizer.VocabSize} pieces but the model's vocabulary is {decoder.Config.VocabSize}");
        }
        return new LoadedModel(name, decoder, tokenizer);
    }

    /// <summary>Finds the ONNX graph (converting a checkpoint if that is what the folder holds) and the tokenizer.</summary>
    public static (string OnnxPath, string TokenizerPath, string Name) Resolve(string directory, string? cacheDirectory = null)
    {
        RequireFolder(directory);
        var tokenizer = FindTokenizer(directory)
            ?? throw new FileNotFoundException($"model folder '{directory}' has no tokenizer (tokenizer.bin or tok*.bin)");
        var exported = Path.Combine(directory, "model.onnx");
        if (File.Exists(exported))
            return (exported, tokenizer, new DirectoryInfo(directory).Name);
        var checkpoint = FindCheckpoint(directory)
            ?? throw new FileNotFoundException($"model folder '{directory}' has neither model.onnx nor a llama2.c checkpoint (*.bin)");
        return (OnnxModelCache.GetOrConvert(checkpoint, cacheDirectory), tokenizer, Path.GetFileNameWithoutExtension(checkpoint));
    }

    /// <summary>Throws the one "does not exist" error every command gives for a missing model folder.</summary>
    internal static void RequireFolder(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"model folder '{directory}' does not exist");
    }

    /// <summary>The llama2.c checkpoint of a model folder: a *.bin that is not the tokenizer.</summary>
    public static string? FindCheckpoint(string directory) =>
        Directory.EnumerateFiles(directory, "*.bin")
            .Where(f => Path.GetFileName(f) != "tokenizer.bin" && !Path.GetFileName(f).StartsWith("tok", StringComparison.OrdinalIgnoreCase))
            .OrderBy(f => f, StringComparer.Ordinal)
            .FirstOrDefault();

    public static string? FindTokenizer(string directory)
    {
        var named = Path.Combine(directory, "tokenizer.bin");
        if (File.Exists(named)) return named;
        return Directory.EnumerateFiles(directory, "tok*.bin").OrderBy(f => f, StringComparer.Ordinal).FirstOrDefault();
    }

    public void Dispose() => Decoder.Dispose();
}
