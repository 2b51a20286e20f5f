using BenchmarkDotNet.Attributes;
using Pipeline.Inference.Models;

namespace Pipeline.Benchmarks.Micro;

/// <summary>
/// The two copies of the past that a decode step makes besides attention itself, replayed with
/// the same sizes and loops: DecoderModel.Step clears a padded [batch, kv_heads, past, head_dim]
/// tensor per layer for keys and values and gathers every row's cache into it; the graph's Concat
/// then writes past + new into present, [batch, kv_heads, past + 1, head_dim]. Comparing these
/// with <see cref="DecodeContextBenchmarks"/> says what share of a step is copying.
/// </summary>
public class PastCopyBenchmarks
{
    private LlamaConfig _config = null!;
    private float[][] _cacheKeys = [];
    private float[][] _padded = [];
    private float[] _present = [];
    private int _past;

    [Params("260k", "110m")]
    public string Model { get; set; } = "260k";

    [Params(1, 16)]
    public int Batch { get; set; }

    [Params(32, 128, 448)]
    public int Context { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _config = Model == "260k" ? new LlamaConfig(64, 172, 5, 8, 4, 512, 512, true) : SyntheticShape.Parse(Model);
        _past = (Context + 63) / 64 * 64;
        int perLayer = _config.KvHeads * _past * _config.HeadDim;
        // One cache's keys per layer stands in for every row's keys and values: the bytes moved are the same.
        _cacheKeys = Enumerable.Range(0, _config.Layers).Select(_ => new float[perLayer]).ToArray();
        _padded = Enumerable.Range(0, _config.Layers).Select(_ => new float[Batch * perLayer]).ToArray();
        _present = new float[Batch * _config.KvHeads * (_past + 1) * _config.HeadDim];
    }

    /// <summary>DecoderModel.Step's gather: clear, then copy each row's Context positions per head, keys and values.</summary>
    [Benchmark]
    public void GatherPastIntoPaddedTensor()
    {
        int hd = _config.HeadDim, kvh = _config.KvHeads, size = Batch * kvh * _past * hd;
        for (int kv = 0; kv < 2; kv++)
            for (int l = 0; l < _config.Layers; l++)
            {
                var dst = _padded[l];
                Array.Clear(dst, 0, size);
                for (int b = 0; b < Batch; b++)
                    for (int h = 0; h < kvh; h++)
                        _cacheKeys[l].AsSpan(h * _past * hd, Context * hd).CopyTo(dst.AsSpan((b * kvh + h) * _past * hd));
            }
    }

    /// <summary>The graph's Concat(past, new) → present, keys and values, every layer.</summary>
    [Benchmark]
    public void ConcatPastIntoPresent()
    {
        int hd = _config.HeadDim, kvh = _config.KvHeads;
        for (int kv = 0; kv < 2; kv++)
            for (int l = 0; l < _config.Layers; l++)
                for (int bh = 0; bh < Batch * kvh; bh++)
                    _padded[l].AsSpan(bh * _past * hd, _past * hd).CopyTo(_present.AsSpan(bh * (_past + 1) * hd));
    }
}
