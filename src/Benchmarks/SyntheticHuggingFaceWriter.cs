using System.Globalization;
using System.Text;
using Pipeline.Inference.Models;

namespace Pipeline.Benchmarks;

/// <summary>
/// Writes a synthetic model as a Hugging Face folder (config.json, one 16-bit model.safetensors,
/// and a llama2.c tokenizer.bin so the folder runs without a tokenizer.json), one tensor at a
/// time: a TinyLlama-1.1B-shaped file (2.2 GB in BF16) is written without holding the model.
/// For loader memory measurements; speed is the same as any model of the shape.
/// </summary>
public static class SyntheticHuggingFaceWriter
{
    private const double WeightStd = 0.02;

    /// <summary>TinyLlama-1.1B's shape (dim 2048, 22 layers, 32 heads, 4 KV heads, hidden 5632, vocab 32000, 2048 positions).</summary>
    public static LlamaConfig TinyLlama => new(2048, 5632, 22, 32, 4, 32000, 2048, SharedClassifier: false);

    /// <param name="dtype">"BF16" or "F16".</param>
    public static void Write(LlamaConfig shape, ulong seed, string directory, string dtype = "BF16")
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (dtype is not ("BF16" or "F16")) throw new ArgumentException("dtype must be BF16 or F16", nameof(dtype));
        Directory.CreateDirectory(directory);
        var inv = CultureInfo.InvariantCulture;
        File.WriteAllText(Path.Combine(directory, "config.json"), string.Create(inv,
            $"{{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": {shape.Dim}, \"intermediate_size\": {shape.HiddenDim}, \"num_hidden_layers\": {shape.Layers}, " +
            $"\"num_attention_heads\": {shape.Heads}, \"num_key_value_heads\": {shape.KvHeads}, \"vocab_size\": {shape.VocabSize}, \"max_position_embeddings\": {shape.SeqLen}, " +
            $"\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"tie_word_embeddings\": {(shape.SharedClassifier ? "true" : "false")}, \"hidden_act\": \"silu\", \"torch_dtype\": \"{(dtype == "BF16" ? "bfloat16" : "float16")}\"}}"));
        using (var tokenizer = File.Create(Path.Combine(directory, "tokenizer.bin")))
            SyntheticModelWriter.WriteTokenizer(shape.VocabSize, tokenizer);

        long dim = shape.Dim, q = shape.QDim, kv = shape.KvDim, hidden = shape.HiddenDim, vocab = shape.VocabSize;
        var tensors = new List<(string Name, long[] Shape, bool Norm)> { ("model.embed_tokens.weight", [vocab, dim], false) };
        for (int l = 0; l < shape.Layers; l++)
        {
            string P(string n) => $"model.layers.{l}.{n}";
            tensors.Add((P("input_layernorm.weight"), [dim], true));
            tensors.Add((P("self_attn.q_proj.weight"), [q, dim], false));
            tensors.Add((P("self_attn.k_proj.weight"), [kv, dim], false));
            tensors.Add((P("self_attn.v_proj.weight"), [kv, dim], false));
            tensors.Add((P("self_attn.o_proj.weight"), [dim, q], false));
            tensors.Add((P("post_attention_layernorm.weight"), [dim], true));
            tensors.Add((P("mlp.gate_proj.weight"), [hidden, dim], false));
            tensors.Add((P("mlp.up_proj.weight"), [hidden, dim], false));
            tensors.Add((P("mlp.down_proj.weight"), [dim, hidden], false));
        }
        tensors.Add(("model.norm.weight", [dim], true));
        if (!shape.SharedClassifier) tensors.Add(("lm_head.weight", [vocab, dim], false));

        var header = new StringBuilder("{\"__metadata__\": {\"format\": \"pt\"}");
        long offset = 0;
        foreach (var (name, dims, _) in tensors)
        {
            long bytes = dims.Aggregate(1L, (a, b) => a * b) * 2;
            header.Append(inv, $", \"{name}\": {{\"dtype\": \"{dtype}\", \"shape\": [{string.Join(", ", dims)}], \"data_offsets\": [{offset}, {offset + bytes}]}}");
            offset += bytes;
        }
        header.Append('}');
        while ((8 + header.Length) % 8 != 0) header.Append(' ');

        var path = Path.Combine(directory, "model.safetensors");
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        var random = new SplitMixRandom(seed);
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            file.Write(BitConverter.GetBytes((long)header.Length));
            file.Write(Encoding.UTF8.GetBytes(header.ToString()));
            var buffer = new byte[1 << 20];
            foreach (var (_, dims, norm) in tensors)
            {
                long count = dims.Aggregate(1L, (a, b) => a * b);
                int used = 0;
                for (long i = 0; i < count; i++)
                {
                    float v = norm ? 1f : (float)(random.NextNormal() * WeightStd);
                    ushort bits = dtype == "BF16" ? (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16) : BitConverter.HalfToUInt16Bits((Half)v);
                    buffer[used++] = (byte)bits;
                    buffer[used++] = (byte)(bits >> 8);
                    if (used == buffer.Length) { file.Write(buffer); used = 0; }
                }
                file.Write(buffer, 0, used);
            }
        }
        File.Move(temp, path, overwrite: true);
    }
}
