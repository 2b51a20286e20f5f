using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration;

public sealed class OnnxModelCacheTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pipeline-cache-test-").FullName;

    [Fact]
    public void The_cached_graph_is_reused_while_the_checkpoint_is_unchanged_and_regenerated_when_it_changes()
    {
        var checkpoint = Path.Combine(_dir, "model.bin");
        File.Copy(Path.Combine(RepoPaths.ModelDir, "stories260K.bin"), checkpoint);
        var cache = Path.Combine(_dir, "cache");

        var first = OnnxModelCache.GetOrConvert(checkpoint, cache);
        var written = File.GetLastWriteTimeUtc(first);
        Assert.Equal(first, OnnxModelCache.GetOrConvert(checkpoint, cache));
        Assert.Equal(written, File.GetLastWriteTimeUtc(first));

        // Change one weight of the final norm (near the end of the file, before the RoPE tables).
        var bytes = File.ReadAllBytes(checkpoint);
        int offset = bytes.Length - 512 * 8 * 4 - 4;
        BitConverter.GetBytes(BitConverter.ToSingle(bytes, offset) * 1.5f).CopyTo(bytes, offset);
        File.WriteAllBytes(checkpoint, bytes);

        var second = OnnxModelCache.GetOrConvert(checkpoint, cache);
        Assert.NotEqual(first, second);
        Assert.True(File.Exists(second));
        Assert.False(Logits(first).AsSpan().SequenceEqual(Logits(second)), "the regenerated graph computes the same logits as the stale one");
    }

    private static float[] Logits(string onnx)
    {
        using var model = DecoderModel.Load(onnx);
        using var cache = new KvCache(model.Config);
        var logits = new float[model.Config.VocabSize];
        model.Step([new SequenceStep(cache, new[] { 1, 403, 407 })], new StepWorkspace(), logits);
        return logits;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
