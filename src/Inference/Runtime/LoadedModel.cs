using Pipeline.Inference.Models.HuggingFace;
using Pipeline.Inference.Models.Sources;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Inference.Runtime;

/// <summary>
/// A model made ready to run: its decoder session and its tokenizer, both immutable. The path is
/// anything <see cref="ModelSource.Detect"/> recognises: a Hugging Face folder, a GGUF file (or a
/// folder holding one), a llama2.c folder or checkpoint, or a folder with an exported
/// <c>model.onnx</c>. Anything but ONNX is converted on first use and cached.
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
        var (onnx, tokenizerPath, name) = Resolve(directory, cacheDirectory, options?.MaxContext);
        // A llama2.c tokenizer.bin beside the weights wins; otherwise tokenizer.json or the GGUF's own.
        ITokenizer tokenizer = Path.GetExtension(tokenizerPath).Equals(".bin", StringComparison.OrdinalIgnoreCase)
            ? Tokenization.Tokenizer.Load(tokenizerPath)
            : TokenizerSource.Load(tokenizerPath).Tokenizer;
        // A Hugging Face model's eos_token_id (config.json, generation_config.json) stops it too.
        var source = ModelSource.Detect(directory);
        if (source.Format == ModelFormat.HuggingFace && HuggingFaceConfig.Read(source.Directory).EndTokenIds is { Count: > 0 } modelEnds)
            tokenizer = new ModelEndIdsTokenizer(tokenizer, modelEnds);
        var decoder = DecoderModel.Load(onnx, options);
        // Hugging Face models often pad the embedding past the tokenizer's ids (Qwen: 151936 rows
        // for 151665 tokens); only a tokenizer that can produce ids the model lacks is wrong.
        if (tokenizer.VocabSize > decoder.Config.VocabSize)
        {
            decoder.Dispose();
            throw new InvalidDataException($"tokenizer has {tokenizer.VocabSize} pieces but the model's vocabulary is {decoder.Config.VocabSize}");
        }
        return new LoadedModel(name, decoder, tokenizer);
    }

    /// <summary>Finds the ONNX graph (converting the weights if that is what the path holds) and the tokenizer.</summary>
    public static (string OnnxPath, string TokenizerPath, string Name) Resolve(string directory, string? cacheDirectory = null) =>
        Resolve(directory, cacheDirectory, maxContext: null);

    /// <summary>
    /// As <see cref="Resolve(string, string?)"/>, with the context capped at <paramref name="maxContext"/>.
    /// The tokenizer is a llama2.c <c>tokenizer.bin</c>/<c>tok*.bin</c> when the folder has one, else
    /// <c>tokenizer.json</c> (Hugging Face) or the GGUF file itself.
    /// </summary>
    public static (string OnnxPath, string TokenizerPath, string Name) Resolve(string directory, string? cacheDirectory, int? maxContext)
    {
        RequireFolder(directory);
        var source = ModelSource.Detect(directory);
        var tokenizer = FindTokenizer(source.Directory)
            ?? (source.Format == ModelFormat.Gguf ? source.ModelPath : null)
            ?? (File.Exists(Path.Combine(source.Directory, "tokenizer.json")) ? Path.Combine(source.Directory, "tokenizer.json") : null)
            ?? throw new FileNotFoundException($"model '{directory}' has no tokenizer (tokenizer.bin, tok*.bin, tokenizer.json, or a GGUF's own)");
        return (OnnxModelCache.GetOrConvert(source, maxContext, cacheDirectory), tokenizer, source.Name);
    }

    /// <summary>Throws the one "does not exist" error every command gives for a missing model path (a folder, or a model file).</summary>
    internal static void RequireFolder(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory) && !File.Exists(directory))
            throw new DirectoryNotFoundException($"model folder '{directory}' does not exist");
    }

    /// <summary>The llama2.c checkpoint of a model folder: a *.bin that is not the tokenizer.</summary>
    public static string? FindCheckpoint(string directory) => Llama2cFiles.FindCheckpoint(directory);

    public static string? FindTokenizer(string directory) => Llama2cFiles.FindTokenizer(directory);

    public void Dispose() => Decoder.Dispose();
}
