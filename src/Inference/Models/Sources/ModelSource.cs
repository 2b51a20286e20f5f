using System.Text.Json;
using Pipeline.Inference.Models.Gguf;
using Pipeline.Inference.Models.HuggingFace;
using Pipeline.Inference.Onnx.Schema;

namespace Pipeline.Inference.Models.Sources;

/// <summary>
/// A model path, recognised: what format it is, where its files are. Every format becomes the same
/// thing downstream: an <see cref="IWeightSource"/> for the converter, then one ONNX graph.
/// </summary>
/// <param name="Format">What the path holds.</param>
/// <param name="Directory">The folder with the model's files (tokenizer, templates).</param>
/// <param name="ModelPath">The weights: the checkpoint, GGUF or ONNX file, or the Hugging Face folder.</param>
/// <param name="Name">A short name for the model (file or folder name), used in cache file names.</param>
internal sealed record ModelSource(ModelFormat Format, string Directory, string ModelPath, string Name)
{
    /// <summary>
    /// Recognises <paramref name="path"/>: a <c>.gguf</c>, <c>.onnx</c> or llama2.c <c>.bin</c>
    /// file, a Hugging Face folder (<c>config.json</c> + safetensors; preferred when a folder holds
    /// several kinds), a folder with <c>model.onnx</c>, a folder with exactly one <c>.gguf</c>, or a
    /// llama2.c folder.
    /// </summary>
    public static ModelSource Detect(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = System.IO.Path.GetFullPath(path);
        if (File.Exists(path)) return DetectFile(path);
        if (!System.IO.Directory.Exists(path))
            throw new DirectoryNotFoundException($"model path '{path}' does not exist");
        string name = new DirectoryInfo(path).Name;
        if (HuggingFaceWeightSource.IsModelFolder(path))
            return new ModelSource(ModelFormat.HuggingFace, path, path, name);
        var onnx = System.IO.Path.Combine(path, "model.onnx");
        if (File.Exists(onnx)) return new ModelSource(ModelFormat.Onnx, path, onnx, name);
        var ggufs = System.IO.Directory.EnumerateFiles(path, "*.gguf").Order(StringComparer.Ordinal).ToArray();
        if (ggufs.Length > 1)
            throw new InvalidDataException($"model folder '{path}' holds {ggufs.Length} GGUF files ({string.Join(", ", ggufs.Select(System.IO.Path.GetFileName))}); name one");
        if (ggufs.Length == 1) return DetectFile(ggufs[0]);
        if (Llama2cFiles.FindCheckpoint(path) is { } checkpoint)
            return new ModelSource(ModelFormat.Llama2c, path, checkpoint, System.IO.Path.GetFileNameWithoutExtension(checkpoint));
        if (File.Exists(System.IO.Path.Combine(path, "config.json")))
            throw new FileNotFoundException($"model folder '{path}' has config.json but neither {HuggingFaceWeightSource.SingleFile} nor {HuggingFaceWeightSource.IndexFile} (only safetensors weights are read)");
        throw new FileNotFoundException($"model folder '{path}' holds no model: expected config.json with safetensors (Hugging Face), a .gguf file, model.onnx, or a llama2.c checkpoint (*.bin)");
    }

    private static ModelSource DetectFile(string file)
    {
        string directory = System.IO.Path.GetDirectoryName(file) ?? ".";
        string fileName = System.IO.Path.GetFileName(file);
        string extension = System.IO.Path.GetExtension(file);
        if (extension.Equals(".gguf", StringComparison.OrdinalIgnoreCase))
            return new ModelSource(ModelFormat.Gguf, directory, file, System.IO.Path.GetFileNameWithoutExtension(file));
        if (extension.Equals(".onnx", StringComparison.OrdinalIgnoreCase))
            return new ModelSource(ModelFormat.Onnx, directory, file, new DirectoryInfo(directory).Name);
        if (fileName.Equals("config.json", StringComparison.Ordinal) || extension.Equals(".safetensors", StringComparison.OrdinalIgnoreCase))
            return HuggingFaceWeightSource.IsModelFolder(directory)
                ? new ModelSource(ModelFormat.HuggingFace, directory, directory, new DirectoryInfo(directory).Name)
                : throw new FileNotFoundException($"'{file}' is not in a Hugging Face model folder (config.json with {HuggingFaceWeightSource.SingleFile} or {HuggingFaceWeightSource.IndexFile})");
        if (extension.Equals(".bin", StringComparison.OrdinalIgnoreCase))
            return new ModelSource(ModelFormat.Llama2c, directory, file, System.IO.Path.GetFileNameWithoutExtension(file));
        throw new InvalidDataException($"'{file}' is not a model file this loader knows (.gguf, .onnx, llama2.c .bin, or a Hugging Face folder)");
    }

    /// <summary>The files whose contents define the converted graph (hashed into the cache key).</summary>
    internal IReadOnlyList<string> DefiningFiles => Format switch
    {
        ModelFormat.HuggingFace => [System.IO.Path.Combine(Directory, "config.json"), .. HuggingFaceWeightSource.WeightFiles(Directory)],
        _ => [ModelPath],
    };

    /// <summary>Opens the weights one tensor at a time, with the context capped at <paramref name="maxContext"/>.</summary>
    internal IWeightSource OpenWeights(int? maxContext = null) => Format switch
    {
        ModelFormat.Llama2c => new LlamaWeightsSource(CappedLlama2c(Llama2Checkpoint.Read(ModelPath), maxContext)),
        ModelFormat.HuggingFace => HuggingFaceWeightSource.Open(Directory, maxContext),
        ModelFormat.Gguf => GgufWeightSource.Open(ModelPath, maxContext),
        _ => throw new InvalidOperationException($"'{ModelPath}' is already an ONNX graph; it has no weights to convert"),
    };

    private static LlamaWeights CappedLlama2c(LlamaWeights w, int? maxContext)
    {
        var capped = w.Config.WithContextCap(maxContext);
        return capped == w.Config ? w : new LlamaWeights
        {
            Config = capped, TokenEmbedding = w.TokenEmbedding, RmsAttention = w.RmsAttention, Wq = w.Wq, Wk = w.Wk, Wv = w.Wv, Wo = w.Wo,
            RmsFfn = w.RmsFfn, W1 = w.W1, W2 = w.W2, W3 = w.W3, RmsFinal = w.RmsFinal, Classifier = w.Classifier,
        };
    }

    /// <summary>Describes the model from its headers and JSON files, reading no weights.</summary>
    public ModelInspection Inspect(int? maxContext = null)
    {
        switch (Format)
        {
            case ModelFormat.HuggingFace:
            {
                using var source = HuggingFaceWeightSource.Open(Directory, maxContext);
                var d = source.Description;
                return Describe(source.Config, source.DTypes, d.MaxPositionEmbeddings, HuggingFaceTokenizerKind(), HuggingFaceHasChatTemplate(), d.EndTokenIds);
            }
            case ModelFormat.Gguf:
            {
                using var source = GgufWeightSource.Open(ModelPath, maxContext);
                var f = source.File;
                var ends = new List<int>();
                foreach (var key in new[] { "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id" })
                    if (f.TryGetValue(key, out var v) && v.AsInt32() is var id && !ends.Contains(id)) ends.Add(id);
                string tokenizer = f.TryGetValue("tokenizer.ggml.model", out var model) ? $"GGUF {model.AsString()}" : LocalTokenizerKind();
                return Describe(source.Config, source.DTypes, source.MaxContext, tokenizer, f.TryGetValue("tokenizer.chat_template", out _) || HuggingFaceHasChatTemplate(), ends);
            }
            case ModelFormat.Llama2c:
            {
                var config = Llama2Checkpoint.ReadConfig(ModelPath);
                return Describe(config.WithContextCap(maxContext), ["F32"], config.SeqLen, LocalTokenizerKind(), false, []);
            }
            default:
            {
                var config = ReadOnnxConfig(ModelPath);
                return Describe(config, ["F32"], config.SeqLen, LocalTokenizerKind(), HuggingFaceHasChatTemplate(), []);
            }
        }
    }

    private ModelInspection Describe(LlamaConfig c, IReadOnlyList<string> dtypes, int maxContext, string tokenizer, bool template, IReadOnlyList<int> ends) =>
        new(ModelPath, Format, c.Architecture, c.ParameterCount, dtypes, c.SeqLen, maxContext, tokenizer, template, ends, c);

    /// <summary>The pipeline.config metadata of a graph this project's converter wrote.</summary>
    internal static LlamaConfig ReadOnnxConfig(string onnxPath)
    {
        ModelProto model;
        using (var stream = File.OpenRead(onnxPath))
        {
            try { model = ModelProto.Parser.ParseFrom(stream); }
            catch (Google.Protobuf.InvalidProtocolBufferException e) { throw new InvalidDataException($"{onnxPath}: not an ONNX model: {e.Message}", e); }
        }
        var json = model.MetadataProps.FirstOrDefault(p => p.Key == "pipeline.config")?.Value
            ?? throw new InvalidDataException($"{onnxPath} was not written by the pipeline converter (no pipeline.config metadata)");
        return JsonSerializer.Deserialize<LlamaConfig>(json) ?? throw new InvalidDataException($"{onnxPath}: unreadable pipeline.config metadata");
    }

    private string LocalTokenizerKind()
    {
        if (File.Exists(System.IO.Path.Combine(Directory, "tokenizer.json"))) return HuggingFaceTokenizerKind();
        return Llama2cFiles.FindTokenizer(Directory) is { } bin ? $"llama2.c {System.IO.Path.GetFileName(bin)}" : "none";
    }

    private string HuggingFaceTokenizerKind()
    {
        var path = System.IO.Path.Combine(Directory, "tokenizer.json");
        if (!File.Exists(path)) return Llama2cFiles.FindTokenizer(Directory) is { } bin ? $"llama2.c {System.IO.Path.GetFileName(bin)}" : "none";
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            string type = root.TryGetProperty("model", out var m) && m.TryGetProperty("type", out var t) ? t.GetString() ?? "?" : "?";
            bool byteLevel = root.TryGetProperty("pre_tokenizer", out var pre) && pre.ValueKind == JsonValueKind.Object && pre.GetRawText().Contains("\"ByteLevel\"", StringComparison.Ordinal);
            return byteLevel ? $"tokenizer.json ({type}, byte-level)" : $"tokenizer.json ({type})";
        }
        catch (JsonException)
        {
            return "tokenizer.json (unreadable)";
        }
    }

    private bool HuggingFaceHasChatTemplate()
    {
        if (File.Exists(System.IO.Path.Combine(Directory, "chat_template.jinja")) || File.Exists(System.IO.Path.Combine(Directory, "chat_template.json"))) return true;
        var path = System.IO.Path.Combine(Directory, "tokenizer_config.json");
        if (!File.Exists(path)) return false;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return doc.RootElement.TryGetProperty("chat_template", out var t) && t.ValueKind is JsonValueKind.String or JsonValueKind.Array;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
