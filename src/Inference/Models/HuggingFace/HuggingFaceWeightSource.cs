using System.Text.Json;

namespace Pipeline.Inference.Models.HuggingFace;

/// <summary>
/// The weights of a Hugging Face folder: <c>model.safetensors</c>, or the shards that
/// <c>model.safetensors.index.json</c> lists, read one tensor at a time. Query and key rows (and
/// their biases and per-head norm weights) are permuted from rotate-half to interleaved RoPE order
/// (see <see cref="RopeLayout"/>); everything else is handed out as stored, widened to float32.
/// </summary>
internal sealed class HuggingFaceWeightSource : IWeightSource
{
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    private readonly Dictionary<string, SafetensorsFile> _tensorFiles;
    private readonly List<SafetensorsFile> _files;

    private HuggingFaceWeightSource(HuggingFaceConfig config, List<SafetensorsFile> files)
    {
        Description = config;
        _files = files;
        _tensorFiles = new(StringComparer.Ordinal);
        foreach (var f in files)
            foreach (var name in f.Tensors.Keys)
                _tensorFiles[name] = f;
        // Some exports tie the classifier yet still omit tie_word_embeddings; without lm_head
        // there is nothing else it can be.
        var c = config.Config;
        if (!c.SharedClassifier && !_tensorFiles.ContainsKey("lm_head.weight"))
            throw new InvalidDataException($"{Folder(files)}: tie_word_embeddings is false but no file holds lm_head.weight");
        Config = c;
    }

    public HuggingFaceConfig Description { get; }
    public LlamaConfig Config { get; }
    public IReadOnlyList<SafetensorsFile> Files => _files;

    /// <summary>Whether <paramref name="directory"/> looks like a Hugging Face model folder.</summary>
    public static bool IsModelFolder(string directory) =>
        File.Exists(Path.Combine(directory, "config.json"))
        && (File.Exists(Path.Combine(directory, SingleFile)) || File.Exists(Path.Combine(directory, IndexFile)));

    /// <summary>The safetensors files of the folder, in index order (or the single file).</summary>
    public static IReadOnlyList<string> WeightFiles(string directory)
    {
        var index = Path.Combine(directory, IndexFile);
        if (!File.Exists(index)) return [Path.Combine(directory, SingleFile)];
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(index));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{index}: no weight_map object");
            var files = new List<string>();
            foreach (var e in map.EnumerateObject())
            {
                var file = e.Value.GetString();
                if (string.IsNullOrEmpty(file) || Path.GetFileName(file) != file)
                    throw new InvalidDataException($"{index}: tensor '{e.Name}' maps to '{file}', not a file name in the folder");
                if (!files.Contains(file)) files.Add(file);
            }
            return files.Select(f => Path.Combine(directory, f)).ToArray();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{index}: not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>Opens the folder's config and every weight file (headers only), capping the context at <paramref name="maxContext"/>.</summary>
    public static HuggingFaceWeightSource Open(string directory, int? maxContext = null)
    {
        var config = HuggingFaceConfig.Read(directory);
        config = config with { Config = config.Config.WithContextCap(maxContext) };
        var files = new List<SafetensorsFile>();
        try
        {
            foreach (var path in WeightFiles(directory))
            {
                if (!File.Exists(path)) throw new FileNotFoundException($"{directory}: weight file '{Path.GetFileName(path)}' is missing", path);
                files.Add(SafetensorsFile.Open(path));
            }
            return new HuggingFaceWeightSource(config, files);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    public bool Has(WeightRole role) => role switch
    {
        WeightRole.RopeFrequencyFactors => false,
        WeightRole.QBias or WeightRole.KBias or WeightRole.VBias => Config.AttentionBias,
        WeightRole.QNorm or WeightRole.KNorm => Config.QkNorm,
        _ => true,
    };

    public float[] Read(WeightRole role, int layer)
    {
        var c = Config;
        string L(string n) => $"model.layers.{layer}.{n}";
        int hd = c.HeadDim;
        return role switch
        {
            WeightRole.TokenEmbedding => Tensor("model.embed_tokens.weight", c.VocabSize, c.Dim),
            WeightRole.AttentionNorm => Tensor(L("input_layernorm.weight"), c.Dim),
            WeightRole.Wq => RopeLayout.RotateHalfToInterleaved(Tensor(L("self_attn.q_proj.weight"), c.QDim, c.Dim), c.QDim, c.Dim, hd),
            WeightRole.Wk => RopeLayout.RotateHalfToInterleaved(Tensor(L("self_attn.k_proj.weight"), c.KvDim, c.Dim), c.KvDim, c.Dim, hd),
            WeightRole.Wv => Tensor(L("self_attn.v_proj.weight"), c.KvDim, c.Dim),
            WeightRole.Wo => Tensor(L("self_attn.o_proj.weight"), c.Dim, c.QDim),
            WeightRole.QBias => RopeLayout.RotateHalfToInterleaved(Tensor(L("self_attn.q_proj.bias"), c.QDim), c.QDim, 1, hd),
            WeightRole.KBias => RopeLayout.RotateHalfToInterleaved(Tensor(L("self_attn.k_proj.bias"), c.KvDim), c.KvDim, 1, hd),
            WeightRole.VBias => Tensor(L("self_attn.v_proj.bias"), c.KvDim),
            WeightRole.QNorm => RopeLayout.RotateHalfToInterleaved(Tensor(L("self_attn.q_norm.weight"), hd), hd, 1, hd),
            WeightRole.KNorm => RopeLayout.RotateHalfToInterleaved(Tensor(L("self_attn.k_norm.weight"), hd), hd, 1, hd),
            WeightRole.FfnNorm => Tensor(L("post_attention_layernorm.weight"), c.Dim),
            WeightRole.W1 => Tensor(L("mlp.gate_proj.weight"), c.HiddenDim, c.Dim),
            WeightRole.W2 => Tensor(L("mlp.down_proj.weight"), c.Dim, c.HiddenDim),
            WeightRole.W3 => Tensor(L("mlp.up_proj.weight"), c.HiddenDim, c.Dim),
            WeightRole.FinalNorm => Tensor("model.norm.weight", c.Dim),
            WeightRole.Classifier => Tensor(c.SharedClassifier ? "model.embed_tokens.weight" : "lm_head.weight", c.VocabSize, c.Dim),
            _ => throw new InvalidDataException($"{Folder(_files)}: Hugging Face weights have no {role} tensor"),
        };
    }

    /// <summary>Tensor <paramref name="name"/> as float32, after checking it has exactly <paramref name="shape"/>.</summary>
    private float[] Tensor(string name, params long[] shape)
    {
        if (!_tensorFiles.TryGetValue(name, out var file))
            throw new InvalidDataException($"{Folder(_files)}: no weight file holds tensor '{name}'");
        var t = file.Tensors[name];
        if (!t.Shape.SequenceEqual(shape))
            throw new InvalidDataException($"{file.Path}: tensor '{name}' has shape [{string.Join(", ", t.Shape)}], expected [{string.Join(", ", shape)}] from config.json");
        return file.ReadFloat32(name);
    }

    /// <summary>Distinct dtypes of the weight files, e.g. ["BF16"].</summary>
    public IReadOnlyList<string> DTypes => _files.SelectMany(f => f.Tensors.Values).Select(t => t.DType).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();

    private static string Folder(List<SafetensorsFile> files) => files.Count > 0 ? Path.GetDirectoryName(files[0].Path) ?? "." : ".";

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
