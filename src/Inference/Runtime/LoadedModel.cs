using Pipeline.Inference.Chat;
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
    private LoadedModel(string name, DecoderModel decoder, ITokenizer tokenizer, ModelChatFormat chat)
    {
        Name = name;
        Decoder = decoder;
        Tokenizer = tokenizer;
        Chat = chat;
    }

    public string Name { get; }
    public DecoderModel Decoder { get; }

    /// <summary>The model's tokenizer; its <see cref="ITokenizer.EndIds"/> include the end ids the model's configuration adds.</summary>
    public ITokenizer Tokenizer { get; }

    /// <summary>How a conversation becomes this model's prompt (its chat template, or a plain join).</summary>
    public ModelChatFormat Chat { get; }

    /// <summary>The model shipped with the library: stories260K, next to the binaries.</summary>
    public static string EmbeddedModelDirectory => Path.Combine(AppContext.BaseDirectory, "models", "stories260k");

    public static LoadedModel Load(string directory, RunnerOptions? options = null, string? cacheDirectory = null)
    {
        var (onnx, tokenizerPath, name) = Resolve(directory, cacheDirectory, options?.MaxContext, options?.Quantize ?? WeightQuantization.None,
            (options ?? new RunnerOptions()).AttentionKernelFor());
        var source = ModelSource.Detect(directory);
        // A llama2.c tokenizer.bin beside the weights wins; otherwise tokenizer.json or the GGUF's own.
        TokenizerSource? described = Path.GetExtension(tokenizerPath).Equals(".bin", StringComparison.OrdinalIgnoreCase)
            ? null
            : TokenizerSource.Load(tokenizerPath);
        ITokenizer tokenizer = described?.Tokenizer ?? Tokenization.Tokenizer.Load(tokenizerPath);
        // generation_config.json / config.json (or GGUF eot/eom) may name more end ids than the tokenizer's eos: all stop.
        if (source.Format is ModelFormat.HuggingFace or ModelFormat.Gguf)
            tokenizer = WithEndIds.Extend(tokenizer, source.Inspect(options?.MaxContext).EndTokenIds);
        var chat = ModelChatFormat.Load(source.Directory, described?.ChatTemplate, described?.BosToken, described?.EosToken);
        if (options is not null && options.WantsHalfResidentDecode())
        {
            // Resident decode calls get a graph of their own: GroupQueryAttention over float16 pasts.
            var (decodeGraph, _, _) = Resolve(directory, cacheDirectory, options.MaxContext, WeightQuantization.F16, AttentionKernel.GroupQuery);
            options = options with { DecodeGraphPath = decodeGraph };
        }
        var decoder = DecoderModel.Load(onnx, options);
        // Hugging Face models often pad the embedding past the tokenizer's ids (Qwen: 151936 rows
        // for 151665 tokens); only a tokenizer that can produce ids the model lacks is wrong.
        if (tokenizer.VocabSize > decoder.Config.VocabSize)
        {
            decoder.Dispose();
            throw new InvalidDataException($"tokenizer has {tokenizer.VocabSize} pieces but the model's vocabulary is {decoder.Config.VocabSize}");
        }
        return new LoadedModel(name, decoder, tokenizer, chat);
    }

    /// <summary>Finds the ONNX graph (converting the weights if that is what the path holds) and the tokenizer.</summary>
    public static (string OnnxPath, string TokenizerPath, string Name) Resolve(string directory, string? cacheDirectory = null) =>
        Resolve(directory, cacheDirectory, maxContext: null);

    /// <summary>
    /// As <see cref="Resolve(string, string?)"/>, with the context capped at <paramref name="maxContext"/>.
    /// The tokenizer is a llama2.c <c>tokenizer.bin</c>/<c>tok*.bin</c> when the folder has one, else
    /// <c>tokenizer.json</c> (Hugging Face) or the GGUF file itself.
    /// </summary>
    public static (string OnnxPath, string TokenizerPath, string Name) Resolve(string directory, string? cacheDirectory, int? maxContext) =>
        Resolve(directory, cacheDirectory, maxContext, WeightQuantization.None);

    /// <summary>As <see cref="Resolve(string, string?, int?)"/>, converting with the weights quantized as <paramref name="quantization"/> says.</summary>
    public static (string OnnxPath, string TokenizerPath, string Name) Resolve(string directory, string? cacheDirectory, int? maxContext, WeightQuantization quantization) =>
        Resolve(directory, cacheDirectory, maxContext, quantization, AttentionKernel.GroupQuery);

    /// <summary>As <see cref="Resolve(string, string?, int?, WeightQuantization)"/>, with attention computed as <paramref name="attention"/> says.</summary>
    public static (string OnnxPath, string TokenizerPath, string Name) Resolve(string directory, string? cacheDirectory, int? maxContext, WeightQuantization quantization,
        AttentionKernel attention)
    {
        RequireFolder(directory);
        var source = ModelSource.Detect(directory);
        var tokenizer = FindTokenizer(source.Directory)
            ?? (source.Format == ModelFormat.Gguf ? source.ModelPath : null)
            ?? (File.Exists(Path.Combine(source.Directory, "tokenizer.json")) ? Path.Combine(source.Directory, "tokenizer.json") : null)
            ?? throw new FileNotFoundException($"model '{directory}' has no tokenizer (tokenizer.bin, tok*.bin, tokenizer.json, or a GGUF's own)");
        // GGUF and llama2.c files state a context their converters chose (llama.cpp's llama2.c
        // converter writes 128 whatever the model saw), so --context N may also extend theirs, as
        // llama.cpp's -c does; only the RoPE tables depend on it. A Hugging Face config's limit
        // (or Mistral's sliding window) is a real one: there N only caps.
        int? extend = source.Format is ModelFormat.Gguf or ModelFormat.Llama2c ? maxContext : null;
        return (OnnxModelCache.GetOrConvert(source, maxContext, cacheDirectory, extend, quantization, attention), tokenizer, source.Name);
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
