using BenchmarkDotNet.Attributes;
using Pipeline.Inference.Sampling;

namespace Pipeline.Benchmarks.Micro;

/// <summary>One sampled token from a row of logits: the per-token cost the sample actor pays.</summary>
[MemoryDiagnoser]
public class SamplerBenchmarks
{
    private float[] _logits = [];
    private int[] _history = [];
    private SamplingOptions _options = new();
    private long _draw;

    [Params(512, 32000)]
    public int Vocab { get; set; }

    [Params("temperature", "top-p-0.9", "greedy")]
    public string Mode { get; set; } = "temperature";

    [GlobalSetup]
    public void Setup()
    {
        var random = new SplitMixRandom(1);
        _logits = new float[Vocab];
        for (int i = 0; i < _logits.Length; i++) _logits[i] = (float)(random.NextNormal() * 3);
        _history = Enumerable.Range(0, 64).Select(_ => random.NextInt(0, Vocab)).ToArray();
        _options = Mode switch
        {
            "greedy" => new SamplingOptions { Temperature = 0f },
            "top-p-0.9" => new SamplingOptions { Temperature = 1f, TopP = 0.9f },
            _ => new SamplingOptions { Temperature = 1f },
        };
    }

    [Benchmark]
    public int SampleOneToken() => Sampler.Sample(_logits, _options, 42, _draw++, _history);
}
