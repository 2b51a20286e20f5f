using System.Globalization;
using System.Text;

namespace Pipeline.Testing;

/// <summary>
/// The shape of a tiny random Llama-family model for tests. <see cref="Architecture"/> is the
/// Hugging Face class name: Qwen2 implies q/k/v biases, Qwen3 per-head q/k norms.
/// </summary>
internal sealed record TinySpec
{
    public string Architecture { get; init; } = "LlamaForCausalLM";
    public int Dim { get; init; } = 32;
    public int Hidden { get; init; } = 48;
    public int Layers { get; init; } = 2;
    public int Heads { get; init; } = 4;
    public int KvHeads { get; init; } = 2;
    public int Vocab { get; init; } = 96;
    public int MaxPositions { get; init; } = 160;
    public float RopeTheta { get; init; } = 500000f;
    public float Eps { get; init; } = 1e-5f;
    public bool Tied { get; init; }
    /// <summary>0: dim / heads, not written to config.json.</summary>
    public int HeadDim { get; init; }
    /// <summary>rope_scaling as config.json JSON, or null.</summary>
    public string? RopeScalingJson { get; init; }
    public float WeightScale { get; init; } = 0.25f;
    public ulong Seed { get; init; } = 7;

    public int Hd => HeadDim > 0 ? HeadDim : Dim / Heads;
    public bool Biases => Architecture == "Qwen2ForCausalLM";
    public bool QkNorm => Architecture == "Qwen3ForCausalLM";

    public string ConfigJson(IReadOnlyList<int>? eos = null)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder("{");
        sb.Append(inv, $"\"architectures\": [\"{Architecture}\"], \"hidden_size\": {Dim}, \"intermediate_size\": {Hidden}, ");
        sb.Append(inv, $"\"num_hidden_layers\": {Layers}, \"num_attention_heads\": {Heads}, \"num_key_value_heads\": {KvHeads}, ");
        sb.Append(inv, $"\"vocab_size\": {Vocab}, \"max_position_embeddings\": {MaxPositions}, \"rope_theta\": {RopeTheta.ToString("R", inv)}, ");
        sb.Append(inv, $"\"rms_norm_eps\": {Eps.ToString("R", inv)}, \"tie_word_embeddings\": {(Tied ? "true" : "false")}, \"hidden_act\": \"silu\", \"torch_dtype\": \"bfloat16\"");
        if (HeadDim > 0) sb.Append(inv, $", \"head_dim\": {HeadDim}");
        if (RopeScalingJson is not null) sb.Append(inv, $", \"rope_scaling\": {RopeScalingJson}");
        if (eos is not null) sb.Append(inv, $", \"eos_token_id\": [{string.Join(", ", eos)}]");
        return sb.Append('}').ToString();
    }
}

/// <summary>
/// A tiny random model as Hugging Face stores it: tensors by their transformers names, q/k rows in
/// rotate-half order. Values are rounded to bfloat16 so that F32, F16-free BF16 files and every
/// other format carry exactly the same numbers.
/// </summary>
internal sealed class TinyModel
{
    public TinyModel(TinySpec spec)
    {
        Spec = spec;
        var random = new Xorshift(spec.Seed);
        int d = spec.Dim, hd = spec.Hd, q = spec.Heads * hd, kv = spec.KvHeads * hd, f = spec.Hidden;
        float[] Matrix(long n) => Fill(n, () => spec.WeightScale * random.NextSigned());
        float[] Norm(long n) => Fill(n, () => 1f + 0.3f * random.NextSigned());
        Add("model.embed_tokens.weight", Matrix((long)spec.Vocab * d), spec.Vocab, d);
        for (int l = 0; l < spec.Layers; l++)
        {
            string P(string n) => $"model.layers.{l}.{n}";
            Add(P("input_layernorm.weight"), Norm(d), d);
            Add(P("self_attn.q_proj.weight"), Matrix((long)q * d), q, d);
            Add(P("self_attn.k_proj.weight"), Matrix((long)kv * d), kv, d);
            Add(P("self_attn.v_proj.weight"), Matrix((long)kv * d), kv, d);
            Add(P("self_attn.o_proj.weight"), Matrix((long)d * q), d, q);
            if (spec.Biases)
            {
                Add(P("self_attn.q_proj.bias"), Fill(q, () => 0.5f * random.NextSigned()), q);
                Add(P("self_attn.k_proj.bias"), Fill(kv, () => 0.5f * random.NextSigned()), kv);
                Add(P("self_attn.v_proj.bias"), Fill(kv, () => 0.5f * random.NextSigned()), kv);
            }
            if (spec.QkNorm)
            {
                Add(P("self_attn.q_norm.weight"), Norm(hd), hd);
                Add(P("self_attn.k_norm.weight"), Norm(hd), hd);
            }
            Add(P("post_attention_layernorm.weight"), Norm(d), d);
            Add(P("mlp.gate_proj.weight"), Matrix((long)f * d), f, d);
            Add(P("mlp.up_proj.weight"), Matrix((long)f * d), f, d);
            Add(P("mlp.down_proj.weight"), Matrix((long)d * f), d, f);
        }
        Add("model.norm.weight", Norm(d), d);
        if (!spec.Tied) Add("lm_head.weight", Matrix((long)spec.Vocab * d), spec.Vocab, d);
    }

    public TinySpec Spec { get; }

    /// <summary>Tensors in insertion order: name → (values, shape outermost first).</summary>
    public List<(string Name, float[] Data, long[] Shape)> Tensors { get; } = [];

    public float[] this[string name] => Tensors.First(t => t.Name == name).Data;

    private void Add(string name, float[] data, params long[] shape) => Tensors.Add((name, data, shape));

    private static float[] Fill(long n, Func<float> next)
    {
        var t = new float[n];
        for (long i = 0; i < n; i++) t[i] = Bf16.Round(next());
        return t;
    }

    /// <summary>
    /// llama.cpp's convert_hf_to_gguf permute for q/k rows: reshape(heads, 2, hd/2, rest), swap the
    /// middle axes. Row h·hd + 2i + j of the result is row h·hd + j·hd/2 + i of the input.
    /// </summary>
    public static float[] ToInterleaved(float[] rows, int headDim, long rowLength)
    {
        var result = new float[rows.Length];
        long count = rows.Length / rowLength;
        for (long r = 0; r < count; r++)
        {
            long head = r / headDim, within = r % headDim, i = within / 2, j = within % 2;
            long source = head * headDim + j * (headDim / 2) + i;
            Array.Copy(rows, source * rowLength, result, r * rowLength, rowLength);
        }
        return result;
    }

    private sealed class Xorshift(ulong seed)
    {
        private ulong _s = seed * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL;

        /// <summary>Uniform in [-1, 1).</summary>
        public float NextSigned()
        {
            _s ^= _s << 13; _s ^= _s >> 7; _s ^= _s << 17;
            return (float)((_s >> 11) * (1.0 / (1UL << 53)) * 2 - 1);
        }
    }
}

/// <summary>bfloat16 rounding (round to nearest even), as torch does it.</summary>
internal static class Bf16
{
    public static ushort Bits(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        return (ushort)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
    }

    public static float Round(float f) => BitConverter.Int32BitsToSingle(Bits(f) << 16);
}
