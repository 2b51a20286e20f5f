using System.Collections.Frozen;
using System.Text.Json;

namespace Pipeline.Inference.Models.HuggingFace;

/// <summary>
/// What a Hugging Face <c>config.json</c> (and <c>generation_config.json</c>) says about a
/// Llama-family decoder: the <see cref="LlamaConfig"/>, the model's own context limit and the ids
/// that end generation.
/// </summary>
internal sealed record HuggingFaceConfig(LlamaConfig Config, int MaxPositionEmbeddings, IReadOnlyList<int> EndTokenIds, int? BosTokenId, string? TorchDtype)
{
    /// <summary>The architectures this loader runs, and the name each is known by in <see cref="LlamaConfig.Architecture"/>.</summary>
    private static readonly FrozenDictionary<string, string> Architectures = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["LlamaForCausalLM"] = "llama",
        ["MistralForCausalLM"] = "mistral",
        ["Qwen2ForCausalLM"] = "qwen2",
        ["Qwen3ForCausalLM"] = "qwen3",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    public static HuggingFaceConfig Read(string directory)
    {
        var path = Path.Combine(directory, "config.json");
        using var doc = ParseJson(path);
        var root = doc.RootElement;
        string architecture = ArchitectureOf(root, path);

        int dim = Int(root, "hidden_size", path);
        int heads = Int(root, "num_attention_heads", path);
        int kvHeads = OptionalInt(root, "num_key_value_heads") ?? heads;
        int maxPositions = Int(root, "max_position_embeddings", path);
        int context = maxPositions;
        // Mistral v0.1 attends within a sliding window; inside the window that is full attention,
        // so the context is capped there and every result stays exact.
        if (SlidingWindowOf(root, architecture) is int window && window < context) context = window;

        if (root.TryGetProperty("hidden_act", out var act) && act.ValueKind == JsonValueKind.String && act.GetString() is not ("silu" or "swish"))
            throw new InvalidDataException($"{path}: hidden_act '{act.GetString()}' is not supported (silu)");
        if (Bool(root, "mlp_bias"))
            throw new InvalidDataException($"{path}: mlp_bias is not supported");
        // Llama/Mistral/Qwen3's attention_bias also puts a bias on o_proj, which the graph lacks.
        if (architecture != "qwen2" && Bool(root, "attention_bias"))
            throw new InvalidDataException($"{path}: attention_bias (biases on q/k/v and o_proj) is not supported for {architecture}");

        var config = new LlamaConfig(
            dim,
            Int(root, "intermediate_size", path),
            Int(root, "num_hidden_layers", path),
            heads,
            kvHeads,
            Int(root, "vocab_size", path),
            context,
            SharedClassifier: Bool(root, "tie_word_embeddings"))
        {
            Architecture = architecture,
            RopeTheta = OptionalFloat(root, "rope_theta") ?? LlamaConfig.DefaultRopeTheta,
            RmsNormEpsilon = OptionalFloat(root, "rms_norm_eps") ?? 1e-6f,
            RopeScaling = RopeScalingOf(root, path),
            // Qwen2 always has q/k/v biases (and none on o_proj).
            AttentionBias = architecture == "qwen2",
            QkNorm = architecture == "qwen3",
            ExplicitHeadDim = OptionalInt(root, "head_dim") is int hd && hd != dim / heads ? hd : 0,
        };
        try { config.Validate(); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }

        var endIds = new List<int>();
        AddIds(root, "eos_token_id", endIds);
        var generationPath = Path.Combine(directory, "generation_config.json");
        if (File.Exists(generationPath))
        {
            using var generation = ParseJson(generationPath);
            AddIds(generation.RootElement, "eos_token_id", endIds);
        }
        string? dtype = root.TryGetProperty("torch_dtype", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()
            : root.TryGetProperty("dtype", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        return new HuggingFaceConfig(config, maxPositions, endIds, OptionalInt(root, "bos_token_id"), dtype);
    }

    private static JsonDocument ParseJson(string path)
    {
        try { return JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
    }

    private static string ArchitectureOf(JsonElement root, string path)
    {
        if (root.TryGetProperty("architectures", out var list) && list.ValueKind == JsonValueKind.Array && list.GetArrayLength() > 0)
        {
            var name = list[0].GetString() ?? "";
            return Architectures.TryGetValue(name, out var arch) ? arch
                : throw new InvalidDataException($"{path}: architecture '{name}' is not supported ({string.Join(", ", Architectures.Keys)})");
        }
        if (root.TryGetProperty("model_type", out var type) && type.GetString() is { } modelType && Architectures.Values.Contains(modelType, StringComparer.Ordinal))
            return modelType;
        throw new InvalidDataException($"{path}: no 'architectures' list naming one of {string.Join(", ", Architectures.Keys)}");
    }

    private static int? SlidingWindowOf(JsonElement root, string architecture)
    {
        // Qwen2/Qwen3 configs state a window but use it only with use_sliding_window.
        if (architecture is "qwen2" or "qwen3" && !Bool(root, "use_sliding_window")) return null;
        return OptionalInt(root, "sliding_window");
    }

    private static RopeScaling? RopeScalingOf(JsonElement root, string path)
    {
        if (!root.TryGetProperty("rope_scaling", out var s) || s.ValueKind == JsonValueKind.Null) return null;
        if (s.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: rope_scaling is not an object");
        string? type = s.TryGetProperty("rope_type", out var rt) && rt.ValueKind == JsonValueKind.String ? rt.GetString()
            : s.TryGetProperty("type", out var tt) && tt.ValueKind == JsonValueKind.String ? tt.GetString() : null;
        if (type is null or "default") return null;
        if (type is not (RopeScaling.Linear or RopeScaling.Llama3))
            throw new InvalidDataException($"{path}: rope_scaling type '{type}' is not supported (linear, llama3)");
        var scaling = new RopeScaling(type, OptionalFloat(s, "factor") ?? throw new InvalidDataException($"{path}: rope_scaling has no factor"));
        if (type == RopeScaling.Llama3)
            scaling = scaling with
            {
                LowFreqFactor = OptionalFloat(s, "low_freq_factor") ?? throw new InvalidDataException($"{path}: rope_scaling llama3 has no low_freq_factor"),
                HighFreqFactor = OptionalFloat(s, "high_freq_factor") ?? throw new InvalidDataException($"{path}: rope_scaling llama3 has no high_freq_factor"),
                OriginalMaxPositionEmbeddings = OptionalInt(s, "original_max_position_embeddings") ?? throw new InvalidDataException($"{path}: rope_scaling llama3 has no original_max_position_embeddings"),
            };
        return scaling;
    }

    private static void AddIds(JsonElement root, string key, List<int> ids)
    {
        if (!root.TryGetProperty(key, out var v)) return;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int one)) { if (!ids.Contains(one)) ids.Add(one); }
        else if (v.ValueKind == JsonValueKind.Array)
            foreach (var e in v.EnumerateArray())
                if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int id) && !ids.Contains(id)) ids.Add(id);
    }

    private static int Int(JsonElement root, string key, string path) =>
        OptionalInt(root, key) ?? throw new InvalidDataException($"{path}: missing integer '{key}'");

    private static int? OptionalInt(JsonElement root, string key) =>
        root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : null;

    private static float? OptionalFloat(JsonElement root, string key) =>
        root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? (float)v.GetDouble() : null;

    private static bool Bool(JsonElement root, string key) =>
        root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.True;
}
