using BenchmarkDotNet.Attributes;

namespace Pipeline.Benchmarks.Micro;

/// <summary>
/// Decode-step time against context length at batch 1 and 16, on stories260K and on the
/// synthetic 110M shape: how the cost of the past grows with its length.
/// </summary>
[InvocationCount(DecodeStepFixture.InvocationsPerIteration)]
public class DecodeContextBenchmarks
{
    private DecodeStepFixture _fixture = null!;

    [Params("260k", "110m")]
    public string Model { get; set; } = "260k";

    [Params(1, 16)]
    public int Batch { get; set; }

    [Params(32, 128, 448)]
    public int Context { get; set; }

    [GlobalSetup]
    public void Setup() => _fixture = new DecodeStepFixture(Model, Batch, Context);

    [IterationSetup]
    public void Restore() => _fixture.Restore();

    [Benchmark]
    public float DecodeStep() => _fixture.Step();

    [GlobalCleanup]
    public void Cleanup() => _fixture.Dispose();
}
