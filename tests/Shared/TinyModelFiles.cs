using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Pipeline.Inference.Models;

namespace Pipeline.Testing;

/// <summary>Writes a <see cref="TinyModel"/> in each format the loader reads, with this file's own encoders (not the loader's code).</summary>
internal static class TinyModelFiles
{
    /// <summary>
    /// A Hugging Face folder: config.json, and model.safetensors or <paramref name="shards"/> files
    /// with model.safetensors.index.json. <paramref name="dtype"/> is F32, F16 or BF16.
    /// </summary>
    public static string WriteHuggingFace(TinyModel model, string directory, string dtype = "F32", int shards = 1, IReadOnlyList<int>? eos = null)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "config.json"), model.Spec.ConfigJson(eos));
        if (shards == 1)
        {
            WriteSafetensors(Path.Combine(directory, "model.safetensors"), model.Tensors, dtype);
            return directory;
        }
        var map = new StringBuilder("{\"metadata\": {}, \"weight_map\": {");
        for (int s = 0; s < shards; s++)
        {
            string file = $"model-{s + 1:D5}-of-{shards:D5}.safetensors";
            var part = model.Tensors.Where((_, i) => i % shards == s).ToList();
            WriteSafetensors(Path.Combine(directory, file), part, dtype);
            foreach (var t in part) map.Append(CultureInfo.InvariantCulture, $"\"{t.Name}\": \"{file}\", ");
        }
        File.WriteAllText(Path.Combine(directory, "model.safetensors.index.json"), map.ToString().TrimEnd(',', ' ') + "}}");
        return directory;
    }

    public static void WriteSafetensors(string path, IReadOnlyList<(string Name, float[] Data, long[] Shape)> tensors, string dtype)
    {
        int size = dtype == "F32" ? 4 : 2;
        var header = new StringBuilder("{\"__metadata__\": {\"format\": \"pt\"}");
        long offset = 0;
        foreach (var (name, data, shape) in tensors)
        {
            long bytes = data.LongLength * size;
            header.Append(CultureInfo.InvariantCulture, $", \"{name}\": {{\"dtype\": \"{dtype}\", \"shape\": [{string.Join(", ", shape)}], \"data_offsets\": [{offset}, {offset + bytes}]}}");
            offset += bytes;
        }
        header.Append('}');
        while ((8 + header.Length) % 8 != 0) header.Append(' ');
        using var s = File.Create(path);
        s.Write(BitConverter.GetBytes((long)header.Length));
        s.Write(Encoding.UTF8.GetBytes(header.ToString()));
        foreach (var (_, data, _) in tensors)
            foreach (var v in data)
            {
                if (dtype == "F32") s.Write(BitConverter.GetBytes(v));
                else if (dtype == "BF16") s.Write(BitConverter.GetBytes(Bf16.Bits(v)));
                else s.Write(BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)v)));
            }
    }

    /// <summary>The model as llama2.c weights: q/k rows interleaved, layers stacked.</summary>
    public static LlamaWeights ToLlama2c(TinyModel model)
    {
        var spec = model.Spec;
        if (spec.Biases || spec.QkNorm || spec.HeadDim > 0) throw new ArgumentException("llama2.c has no biases, q/k norms or explicit head_dim");
        float[] Stack(string name, Func<float[], float[]>? map = null) =>
            Enumerable.Range(0, spec.Layers).SelectMany(l => (map ?? (x => x))(model[$"model.layers.{l}.{name}"])).ToArray();
        var embedding = model["model.embed_tokens.weight"];
        return new LlamaWeights
        {
            Config = new LlamaConfig(spec.Dim, spec.Hidden, spec.Layers, spec.Heads, spec.KvHeads, spec.Vocab, spec.MaxPositions, spec.Tied),
            TokenEmbedding = embedding,
            RmsAttention = Stack("input_layernorm.weight"),
            Wq = Stack("self_attn.q_proj.weight", w => TinyModel.ToInterleaved(w, spec.Hd, spec.Dim)),
            Wk = Stack("self_attn.k_proj.weight", w => TinyModel.ToInterleaved(w, spec.Hd, spec.Dim)),
            Wv = Stack("self_attn.v_proj.weight"),
            Wo = Stack("self_attn.o_proj.weight"),
            RmsFfn = Stack("post_attention_layernorm.weight"),
            W1 = Stack("mlp.gate_proj.weight"),
            W2 = Stack("mlp.down_proj.weight"),
            W3 = Stack("mlp.up_proj.weight"),
            RmsFinal = model["model.norm.weight"],
            Classifier = spec.Tied ? embedding : model["lm_head.weight"],
        };
    }

    public static string WriteLlama2c(TinyModel model, string directory)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, "model.bin");
        using var s = File.Create(path);
        Llama2Checkpoint.WriteLegacy(ToLlama2c(model), s);
        return path;
    }

    /// <summary>ggml type ids used by <see cref="WriteGguf"/>.</summary>
    public const uint GgmlF32 = 0, GgmlF16 = 1, GgmlQ8_0 = 8;

    /// <summary>
    /// A GGUF v3 file as llama.cpp's converter writes a llama (q/k interleaved) or qwen2/qwen3 model
    /// (q/k as Hugging Face stores them). Matrices use <paramref name="matrixType"/> (F32, F16 or
    /// Q8_0), vectors F32.
    /// </summary>
    public static string WriteGguf(TinyModel model, string path, uint matrixType = GgmlF32, int? contextLength = null,
        IReadOnlyList<(string Name, float[] Data, long[] Shape)>? extraTensors = null)
    {
        var spec = model.Spec;
        string arch = spec.Architecture switch { "Qwen2ForCausalLM" => "qwen2", "Qwen3ForCausalLM" => "qwen3", _ => "llama" };
        bool permute = arch == "llama";
        var tensors = new List<(string Name, float[] Data, long[] Shape)>();
        foreach (var (name, data, shape) in model.Tensors)
        {
            string g = GgufName(name);
            var values = permute && (name.EndsWith("q_proj.weight", StringComparison.Ordinal) || name.EndsWith("k_proj.weight", StringComparison.Ordinal))
                ? TinyModel.ToInterleaved(data, spec.Hd, shape[1]) : data;
            tensors.Add((g, values, shape));
        }
        if (extraTensors is not null) tensors.AddRange(extraTensors);
        var meta = new List<(string Key, object Value)>
        {
            ("general.architecture", arch),
            ("general.alignment", 32u),
            ($"{arch}.context_length", (uint)(contextLength ?? spec.MaxPositions)),
            ($"{arch}.embedding_length", (uint)spec.Dim),
            ($"{arch}.block_count", (uint)spec.Layers),
            ($"{arch}.feed_forward_length", (uint)spec.Hidden),
            ($"{arch}.attention.head_count", (uint)spec.Heads),
            ($"{arch}.attention.head_count_kv", (uint)spec.KvHeads),
            ($"{arch}.rope.freq_base", spec.RopeTheta),
            ($"{arch}.attention.layer_norm_rms_epsilon", spec.Eps),
            ($"{arch}.rope.dimension_count", (uint)spec.Hd),
        };
        if (spec.HeadDim > 0) meta.Add(($"{arch}.attention.key_length", (uint)spec.HeadDim));
        using var s = File.Create(path);
        using var w = new BinaryWriter(s);
        w.Write("GGUF"u8);
        w.Write(3u);
        w.Write((ulong)tensors.Count);
        w.Write((ulong)meta.Count);
        foreach (var (key, value) in meta)
        {
            WriteString(w, key);
            switch (value)
            {
                case string v: w.Write(8u); WriteString(w, v); break;
                case uint v: w.Write(4u); w.Write(v); break;
                case float v: w.Write(6u); w.Write(v); break;
                default: throw new ArgumentException(key);
            }
        }
        var encoded = tensors.Select(t => Encode(t.Data, t.Shape.Length == 2 ? matrixType : GgmlF32)).ToList();
        long offset = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            WriteString(w, tensors[i].Name);
            var shape = tensors[i].Shape;
            w.Write((uint)shape.Length);
            foreach (var d in shape.Reverse()) w.Write((ulong)d); // ggml order: contiguous extent first
            w.Write(encoded[i].Type);
            w.Write((ulong)offset);
            offset += (encoded[i].Bytes.Length + 31) / 32 * 32;
        }
        w.Flush();
        while (s.Position % 32 != 0) s.WriteByte(0);
        foreach (var e in encoded)
        {
            s.Write(e.Bytes);
            while (s.Position % 32 != 0) s.WriteByte(0);
        }
        return path;
    }

    private static (uint Type, byte[] Bytes) Encode(float[] data, uint type)
    {
        if (type == GgmlF32) return (type, MemoryMarshal.AsBytes(data.AsSpan()).ToArray());
        if (type == GgmlF16) return (type, data.SelectMany(v => BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)v))).ToArray());
        return (type, QuantizeQ8_0(data));
    }

    /// <summary>ggml's quantize_row_q8_0_ref: per 32 values d = amax/127, q = round(x/d); block {half d; int8 q[32]}.</summary>
    public static byte[] QuantizeQ8_0(float[] data)
    {
        var result = new byte[data.Length / 32 * 34];
        for (int b = 0; b < data.Length / 32; b++)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.Max(amax, Math.Abs(data[b * 32 + j]));
            float d = amax / 127f, id = d != 0 ? 1f / d : 0f;
            BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)d)).CopyTo(result, b * 34);
            for (int j = 0; j < 32; j++) result[b * 34 + 2 + j] = (byte)(sbyte)MathF.Round(data[b * 32 + j] * id, MidpointRounding.AwayFromZero);
        }
        return result;
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static string GgufName(string hf) => hf switch
    {
        "model.embed_tokens.weight" => "token_embd.weight",
        "model.norm.weight" => "output_norm.weight",
        "lm_head.weight" => "output.weight",
        _ => LayerName(hf),
    };

    private static string LayerName(string hf)
    {
        var parts = hf.Split('.', 4); // model, layers, i, rest
        string rest = parts[3] switch
        {
            "input_layernorm.weight" => "attn_norm.weight",
            "self_attn.q_proj.weight" => "attn_q.weight",
            "self_attn.k_proj.weight" => "attn_k.weight",
            "self_attn.v_proj.weight" => "attn_v.weight",
            "self_attn.o_proj.weight" => "attn_output.weight",
            "self_attn.q_proj.bias" => "attn_q.bias",
            "self_attn.k_proj.bias" => "attn_k.bias",
            "self_attn.v_proj.bias" => "attn_v.bias",
            "self_attn.q_norm.weight" => "attn_q_norm.weight",
            "self_attn.k_norm.weight" => "attn_k_norm.weight",
            "post_attention_layernorm.weight" => "ffn_norm.weight",
            "mlp.gate_proj.weight" => "ffn_gate.weight",
            "mlp.up_proj.weight" => "ffn_up.weight",
            "mlp.down_proj.weight" => "ffn_down.weight",
            _ => throw new ArgumentException(hf),
        };
        return $"blk.{parts[2]}.{rest}";
    }
}
