using System.Text;
using Pipeline.Inference.Models;

namespace Pipeline.Benchmarks;

/// <summary>
/// Writes a model folder that <see cref="Pipeline.Inference.Runtime.LoadedModel"/> can load: a
/// llama2.c checkpoint of the given shape with seeded random weights, and a tokenizer with a
/// matching vocabulary. Speed depends only on the shape, so random weights measure what a trained
/// model of that shape would.
/// </summary>
internal static class SyntheticModelWriter
{
    // Small weights keep activations and logits finite through any depth; unit norms are the
    // identity scale a freshly initialised Llama starts from.
    private const double WeightStd = 0.02;

    /// <summary>
    /// Returns a folder holding the model for (shape, seed), writing it under
    /// <paramref name="rootDirectory"/> only the first time.
    /// </summary>
    public static string GetOrWrite(LlamaConfig shape, ulong seed, string rootDirectory)
    {
        var directory = Path.Combine(rootDirectory, $"synthetic-{SyntheticShape.Name(shape)}-seed{seed}");
        var checkpoint = Path.Combine(directory, "synthetic.bin");
        var tokenizer = Path.Combine(directory, "tokenizer.bin");
        if (File.Exists(checkpoint) && File.Exists(tokenizer)) return directory;
        Directory.CreateDirectory(directory);
        WriteAtomically(tokenizer, s => WriteTokenizer(shape.VocabSize, s));
        WriteAtomically(checkpoint, s => Llama2Checkpoint.WriteLegacy(CreateWeights(shape, seed), s));
        return directory;
    }

    /// <summary>Weights of the given shape: normal(0, 0.02) matrices, norms of 1.</summary>
    public static LlamaWeights CreateWeights(LlamaConfig c, ulong seed)
    {
        var random = new SplitMixRandom(seed);
        long layers = c.Layers, dim = c.Dim, kv = c.KvDim, hidden = c.HiddenDim;
        float[] Normal(long count)
        {
            var t = new float[count];
            for (long i = 0; i < count; i++) t[i] = (float)(random.NextNormal() * WeightStd);
            return t;
        }
        float[] Ones(long count) { var t = new float[count]; Array.Fill(t, 1f); return t; }
        var embedding = Normal(c.VocabSize * dim);
        return new LlamaWeights
        {
            Config = c with { SharedClassifier = true },
            TokenEmbedding = embedding,
            RmsAttention = Ones(layers * dim),
            Wq = Normal(layers * dim * dim),
            Wk = Normal(layers * kv * dim),
            Wv = Normal(layers * kv * dim),
            Wo = Normal(layers * dim * dim),
            RmsFfn = Ones(layers * dim),
            W1 = Normal(layers * hidden * dim),
            W2 = Normal(layers * dim * hidden),
            W3 = Normal(layers * hidden * dim),
            RmsFinal = Ones(dim),
            Classifier = embedding,
        };
    }

    /// <summary>
    /// A llama2.c tokenizer file of <paramref name="vocabSize"/> pieces: &lt;unk&gt;, &lt;s&gt;,
    /// &lt;/s&gt;, the 256 byte pieces &lt;0xXX&gt;, then distinct filler pieces. Layout: int32
    /// max_token_length, then per piece float32 score, int32 byte length, UTF-8 bytes.
    /// </summary>
    public static void WriteTokenizer(int vocabSize, Stream output)
    {
        var pieces = new List<string>(vocabSize) { "<unk>", "<s>", "</s>" };
        for (int b = 0; b < 256; b++) pieces.Add($"<0x{b:X2}>");
        // Filler pieces never merge into anything a prompt needs; benchmark prompts are ids anyway.
        for (int i = pieces.Count; i < vocabSize; i++) pieces.Add($"tok{i}");
        if (pieces.Count != vocabSize) throw new ArgumentOutOfRangeException(nameof(vocabSize), "vocabulary must hold at least 259 pieces");
        var bytes = pieces.Select(Encoding.UTF8.GetBytes).ToArray();
        using var writer = new BinaryWriter(output, Encoding.UTF8, leaveOpen: true);
        writer.Write(bytes.Max(b => b.Length));
        for (int i = 0; i < bytes.Length; i++)
        {
            writer.Write(i < 259 ? 0f : -(float)i);
            writer.Write(bytes[i].Length);
            writer.Write(bytes[i]);
        }
    }

    private static void WriteAtomically(string path, Action<Stream> write)
    {
        // Write beside the target and rename, so a second process never reads half a file.
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        using (var stream = File.Create(temp)) write(stream);
        File.Move(temp, path, overwrite: true);
    }
}
