using System.Runtime.InteropServices;
using Pipeline.Inference.Models;

namespace Pipeline.Integration;

public sealed class CheckpointFormatTests
{
    [Fact]
    public void The_embedded_checkpoint_reads_with_the_header_documented_in_SOURCE_md()
    {
        var w = Llama2Checkpoint.Read(Path.Combine(RepoPaths.ModelDir, "stories260K.bin"));
        Assert.Equal(new LlamaConfig(64, 172, 5, 8, 4, 512, 512, SharedClassifier: true), w.Config);
        Assert.Same(w.TokenEmbedding, w.Classifier);
    }

    [Fact]
    public void A_versioned_v1_checkpoint_reads_to_the_same_weights_as_the_legacy_one()
    {
        var legacy = Llama2Checkpoint.Read(Path.Combine(RepoPaths.ModelDir, "stories260K.bin"));
        var v1 = Llama2Checkpoint.Parse(WriteVersion1(legacy));
        Assert.Equal(legacy.Config, v1.Config);
        foreach (var (a, b) in new[] { (legacy.Wq, v1.Wq), (legacy.W2, v1.W2), (legacy.RmsFinal, v1.RmsFinal), (legacy.TokenEmbedding, v1.TokenEmbedding), (legacy.Classifier, v1.Classifier) })
            Assert.True(a.AsSpan().SequenceEqual(b));
    }

    [Fact]
    public void An_untied_legacy_checkpoint_keeps_its_own_classifier()
    {
        var w = Llama2Checkpoint.Read(Path.Combine(RepoPaths.ModelDir, "stories260K.bin"));
        var classifier = w.Classifier.Select(x => x * 2).ToArray();
        var untied = new LlamaWeights
        {
            Config = w.Config with { SharedClassifier = false }, TokenEmbedding = w.TokenEmbedding, RmsAttention = w.RmsAttention,
            Wq = w.Wq, Wk = w.Wk, Wv = w.Wv, Wo = w.Wo, RmsFfn = w.RmsFfn, W1 = w.W1, W2 = w.W2, W3 = w.W3, RmsFinal = w.RmsFinal, Classifier = classifier,
        };
        using var stream = new MemoryStream();
        Llama2Checkpoint.WriteLegacy(untied, stream);
        var back = Llama2Checkpoint.Parse(stream.ToArray());
        Assert.False(back.Config.SharedClassifier);
        Assert.True(back.Classifier.AsSpan().SequenceEqual(classifier));
    }

    [Fact]
    public void A_truncated_checkpoint_is_refused_with_a_clear_message()
    {
        var bytes = File.ReadAllBytes(Path.Combine(RepoPaths.ModelDir, "stories260K.bin"))[..5000];
        var e = Assert.Throws<InvalidDataException>(() => Llama2Checkpoint.Parse(bytes, "cut.bin"));
        Assert.Contains("truncated", e.Message);
    }

    /// <summary>llama2.c export.py's version 1: "ak42", version, 7 params, shared flag, padded to 256; norms first.</summary>
    private static byte[] WriteVersion1(LlamaWeights w)
    {
        var c = w.Config;
        using var s = new MemoryStream();
        var header = new byte[256];
        BitConverter.GetBytes(0x616b3432u).CopyTo(header, 0);
        BitConverter.GetBytes(1).CopyTo(header, 4);
        int[] p = [c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KvHeads, c.VocabSize, c.SeqLen];
        MemoryMarshal.AsBytes(p.AsSpan()).CopyTo(header.AsSpan(8));
        header[36] = (byte)(c.SharedClassifier ? 1 : 0);
        s.Write(header);
        foreach (var t in new[] { w.RmsAttention, w.RmsFfn, w.RmsFinal, w.TokenEmbedding, w.Wq, w.Wk, w.Wv, w.Wo, w.W1, w.W2, w.W3 })
            s.Write(MemoryMarshal.AsBytes(t.AsSpan()));
        if (!c.SharedClassifier) s.Write(MemoryMarshal.AsBytes(w.Classifier.AsSpan()));
        return s.ToArray();
    }
}
